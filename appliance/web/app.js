// Kammer web client: join page, waiting room and meeting screen over the signalling protocol v1
// (docs/protocol.md).
//
// Rules this file keeps:
// * Text from the network (names, chat, room IDs) only ever reaches the page through textContent
//   or attribute values, never as markup.
// * Every visible string comes from i18n.js. Elements carry their string key in data-i18n
//   (and data-i18n-aria-label, data-i18n-placeholder; parameters in data-i18n-args), so that
//   switching the language re-renders the page without rebuilding it.
// * The server is the source of truth: a toggle shows a new state only when the server confirms it.
(function () {
  'use strict';

  const I18N = window.KammerI18n;
  const PROTOCOL_VERSION = 1;
  const PING_INTERVAL_MS = 20000;
  const WELCOME_TIMEOUT_MS = 10000;
  const LEAVE_TIMEOUT_MS = 3000;
  const ANNOUNCEMENT_LIFETIME_MS = 8000;
  const INFO_NOTICE_LIFETIME_MS = 8000;
  const MAX_NOTICES = 4;
  const MAX_CHAT_ELEMENTS = 500;
  const ROOM_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
  // Control characters (C0, DEL, C1), which the server refuses in names.
  const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
  const LANGUAGE_STORAGE_KEY = 'kammer.lang';
  const I18N_ATTRIBUTES = ['aria-label', 'placeholder', 'title'];
  const CHAT_ERRORS = new Set(['chat_too_long', 'chat_rate_limited', 'invalid_text']);
  // Close reasons with their own explanation (docs/protocol.md, "Closing"); removed and
  // meeting_ended arrive as messages before the close.
  const CLOSE_REASONS = new Set(['idle_timeout', 'too_slow', 'server_full', 'too_many_attempts']);

  const $ = (id) => {
    const element = document.getElementById(id);
    if (!element) {
      throw new Error('index.html lacks #' + id);
    }
    return element;
  };

  const ui = {
    main: $('main'),
    announcer: $('announcer'),
    notice: $('notice'),
    screens: {
      join: $('join-screen'),
      lobby: $('lobby-screen'),
      meeting: $('meeting-screen'),
      end: $('end-screen'),
    },
    headings: {
      join: $('join-title'),
      lobby: $('lobby-title'),
      meeting: $('meeting-title'),
      end: $('end-title'),
    },
    langButtons: Array.from(document.querySelectorAll('button[data-lang]')),
    joinForm: $('join-form'),
    joinRoom: $('join-room'),
    joinName: $('join-name'),
    joinPin: $('join-pin'),
    joinSecret: $('join-secret'),
    joinAdvanced: $('join-advanced'),
    joinSubmit: $('join-submit'),
    joinInfo: $('join-info'),
    joinError: $('join-error'),
    lobbyRoom: $('lobby-room'),
    lobbyLeave: $('lobby-leave'),
    meetingTitle: $('meeting-title'),
    meetingBody: document.querySelector('.meeting-body'),
    sidePanels: $('side-panels'),
    participantsPanel: $('participants-panel'),
    participants: $('participants'),
    participantCount: $('participant-count'),
    chatPanel: $('chat-panel'),
    chatLog: $('chat-log'),
    chatEmpty: $('chat-empty'),
    chatForm: $('chat-form'),
    chatInput: $('chat-input'),
    chatError: $('chat-error'),
    chatUnread: $('chat-unread'),
    moderatorPanel: $('moderator-panel'),
    lobbyList: $('lobby-list'),
    lobbyListTitle: $('lobby-list-title'),
    lobbyCount: $('lobby-count'),
    lobbyEmpty: $('lobby-empty'),
    lockToggle: $('lock-toggle'),
    lobbyToggle: $('lobby-toggle'),
    copyLink: $('copy-link'),
    moderatorSecret: $('moderator-secret'),
    secretShow: $('secret-show'),
    secretCopy: $('secret-copy'),
    endMeeting: $('end-meeting'),
    handToggle: $('hand-toggle'),
    participantsToggle: $('participants-toggle'),
    chatToggle: $('chat-toggle'),
    moderatorToggle: $('moderator-toggle'),
    moderatorBadge: $('moderator-badge'),
    leave: $('leave'),
    endTitle: $('end-title'),
    endText: $('end-text'),
    endRejoin: $('end-rejoin'),
    endBack: $('end-back'),
    connectionState: $('connection-state'),
    footerNotice: $('footer-notice'),
    confirmDialog: $('confirm-dialog'),
    confirmTitle: $('confirm-title'),
    confirmText: $('confirm-text'),
    confirmOk: $('confirm-ok'),
    confirmCancel: $('confirm-cancel'),
    handIconTemplate: $('tpl-hand-icon'),
  };

  // ---------------------------------------------------------------------------------------------
  // State

  /** What the client knows about its current room; replaced on every join. */
  function newSession() {
    return {
      // idle | joining | lobby | meeting | leaving | ended
      phase: 'idle',
      leavingFrom: null,
      room: null,
      you: null,
      role: 'participant',
      moderatorSecret: null,
      locked: false,
      lobbyEnabled: false,
      participants: new Map(),
      lobby: [],
      hand: false,
      unread: 0,
      pendingChat: null,
    };
  }

  let session = newSession();
  let lang = 'en';
  let screen = 'join';
  /** The open signalling connection: { socket, welcomed, pingTimer }, or null. */
  let connection = null;
  let limits = { max_message_bytes: 16384, chat_max_chars: 2000, idle_timeout_secs: 60 };
  /** The values of the last join attempt, kept in memory only, for "join again". */
  let lastJoin = null;
  /** Panels the person has opened or closed; kept across sessions of this page. */
  const panelOpen = { participants: true, chat: true, moderation: true };
  let confirmResolve = null;

  // ---------------------------------------------------------------------------------------------
  // Text and language

  function t(key, params) {
    return I18N.format(lang, key, params);
  }

  function argsOf(element) {
    const raw = element.getAttribute('data-i18n-args');
    if (!raw) {
      return undefined;
    }
    try {
      return JSON.parse(raw);
    } catch (_) {
      return undefined;
    }
  }

  function setArgs(element, params) {
    if (params) {
      element.setAttribute('data-i18n-args', JSON.stringify(params));
    }
  }

  /** Sets the element's text to the translation of `key` and remembers the key for re-rendering. */
  function bindText(element, key, params) {
    element.setAttribute('data-i18n', key);
    setArgs(element, params);
    element.textContent = t(key, params);
  }

  /** Like bindText, for an attribute such as aria-label. */
  function bindAttribute(element, attribute, key, params) {
    element.setAttribute('data-i18n-' + attribute, key);
    setArgs(element, params);
    element.setAttribute(attribute, t(key, params));
  }

  function translateDocument() {
    for (const element of document.querySelectorAll('[data-i18n]')) {
      element.textContent = t(element.getAttribute('data-i18n'), argsOf(element));
    }
    for (const attribute of I18N_ATTRIBUTES) {
      for (const element of document.querySelectorAll('[data-i18n-' + attribute + ']')) {
        element.setAttribute(attribute, t(element.getAttribute('data-i18n-' + attribute), argsOf(element)));
      }
    }
  }

  function storedLanguage() {
    try {
      const value = window.localStorage.getItem(LANGUAGE_STORAGE_KEY);
      return I18N.languages.includes(value) ? value : null;
    } catch (_) {
      return null;
    }
  }

  function setLanguage(next, remember) {
    lang = I18N.languages.includes(next) ? next : 'en';
    document.documentElement.lang = lang;
    if (remember) {
      try {
        window.localStorage.setItem(LANGUAGE_STORAGE_KEY, lang);
      } catch (_) {
        // Storage may be disabled; the switch still works for this page.
      }
    }
    for (const button of ui.langButtons) {
      button.setAttribute('aria-pressed', String(button.dataset.lang === lang));
    }
    translateDocument();
    updateDocumentTitle();
  }

  function updateDocumentTitle() {
    switch (screen) {
      case 'lobby':
        document.title = t('title.lobby');
        break;
      case 'meeting':
        document.title = t('title.meeting', { room: session.room || '' });
        break;
      case 'end':
        document.title = t('title.end');
        break;
      default:
        document.title = t('title.join');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Small DOM helpers

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function actionButton(action, participantId, textKey, labelKey, name, extraClass) {
    const button = element('button', 'button button-small' + (extraClass ? ' ' + extraClass : ''));
    button.type = 'button';
    button.dataset.action = action;
    button.dataset.participantId = String(participantId);
    bindText(button, textKey, { name });
    bindAttribute(button, 'aria-label', labelKey, { name });
    return button;
  }

  /**
   * Rebuilds a list with `render` and puts keyboard focus back on the equivalent button, or on a
   * neighbour when that button is gone (for example after admitting someone).
   */
  function rebuildKeepingFocus(list, fallback, render) {
    const active = document.activeElement;
    let wanted = null;
    let index = -1;
    if (active && list.contains(active) && active.dataset && active.dataset.action) {
      wanted = { action: active.dataset.action, id: active.dataset.participantId };
      index = Array.from(list.querySelectorAll('button[data-action]')).indexOf(active);
    }
    render();
    if (!wanted) {
      return;
    }
    const buttons = Array.from(list.querySelectorAll('button[data-action]'));
    const same = buttons.find((b) => b.dataset.action === wanted.action && b.dataset.participantId === wanted.id);
    const target = same || buttons[Math.min(index, buttons.length - 1)] || fallback;
    if (target) {
      target.focus();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Announcements and notices

  /** Tells screen-reader users about a change that needs no visible message. */
  function announce(key, params) {
    const line = element('p', '', t(key, params));
    ui.announcer.append(line);
    window.setTimeout(() => line.remove(), ANNOUNCEMENT_LIFETIME_MS);
  }

  /** Shows a visible notice (kind: info | warning | error). Info notices vanish by themselves. */
  function showNotice(key, params, kind) {
    while (ui.notice.children.length >= MAX_NOTICES) {
      ui.notice.firstElementChild.remove();
    }
    const item = element('div', 'notice notice-' + kind);
    const text = element('p', 'notice-text');
    bindText(text, key, params);
    const dismiss = element('button', 'notice-dismiss');
    dismiss.type = 'button';
    bindAttribute(dismiss, 'aria-label', 'notice.dismiss');
    const cross = element('span', '', '×');
    cross.setAttribute('aria-hidden', 'true');
    dismiss.append(cross);
    dismiss.addEventListener('click', () => {
      const next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      if (next) {
        next.querySelector('button').focus();
      } else {
        focusScreenHeading();
      }
    });
    item.append(text, dismiss);
    ui.notice.append(item);
    if (kind === 'info') {
      window.setTimeout(() => {
        if (!item.contains(document.activeElement)) {
          item.remove();
        }
      }, INFO_NOTICE_LIFETIME_MS);
    }
  }

  function clearNotices() {
    ui.notice.replaceChildren();
  }

  function errorKey(code) {
    const key = 'error.' + code;
    return I18N.has(lang, key) ? key : 'error.unknown';
  }

  function errorParams(code) {
    return { code: String(code), max: limits.chat_max_chars };
  }

  // ---------------------------------------------------------------------------------------------
  // Screens

  function showScreen(name, options) {
    screen = name;
    for (const [key, section] of Object.entries(ui.screens)) {
      section.hidden = key !== name;
    }
    if (ui.confirmDialog.open) {
      ui.confirmDialog.close('cancel');
    }
    if (name !== 'meeting') {
      clearNotices();
    }
    updateDocumentTitle();
    if (!options || options.focus !== false) {
      focusScreenHeading();
    }
  }

  function focusScreenHeading() {
    ui.headings[screen].focus({ preventScroll: false });
  }

  function showJoinScreen(infoKey) {
    session = newSession();
    setJoinBusy(false);
    setJoinInfo(infoKey);
    showScreen('join');
  }

  /** The end of a session: removed, meeting ended, lobby rejected or connection lost. */
  function showEndScreen(kind, detailKey) {
    session.phase = 'ended';
    bindText(ui.endTitle, 'end.' + kind + '.title');
    bindText(ui.endText, detailKey || 'end.' + kind + '.text');
    ui.endRejoin.hidden = kind !== 'lost' || !lastJoin;
    showScreen('end');
  }

  // ---------------------------------------------------------------------------------------------
  // Connection

  function setConnectionState(state) {
    ui.connectionState.dataset.state = state;
    bindText(ui.connectionState, 'conn.' + state);
  }

  function signalUrl() {
    return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/signal';
  }

  function parseMessage(data) {
    if (typeof data !== 'string') {
      return null;
    }
    try {
      const message = JSON.parse(data);
      return message && typeof message === 'object' && typeof message.type === 'string' ? message : null;
    } catch (_) {
      return null;
    }
  }

  /** Opens the WebSocket; resolves once the server's `welcome` arrived. */
  function openConnection() {
    return new Promise((resolve, reject) => {
      let socket;
      try {
        socket = new WebSocket(signalUrl());
      } catch (error) {
        reject(error);
        return;
      }
      const conn = { socket, welcomed: false, pingTimer: null };
      connection = conn;
      setConnectionState('connecting');
      const welcomeTimer = window.setTimeout(() => {
        if (!conn.welcomed) {
          dropConnection(conn);
          reject(new Error('no welcome'));
        }
      }, WELCOME_TIMEOUT_MS);

      socket.addEventListener('open', () => {
        conn.pingTimer = window.setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) {
            socket.send(JSON.stringify({ type: 'ping' }));
          }
        }, PING_INTERVAL_MS);
      });

      socket.addEventListener('message', (event) => {
        const message = parseMessage(event.data);
        if (!message || connection !== conn) {
          return;
        }
        if (!conn.welcomed) {
          if (message.type !== 'welcome') {
            return;
          }
          window.clearTimeout(welcomeTimer);
          if (message.protocol !== PROTOCOL_VERSION) {
            dropConnection(conn);
            reject(new Error('unsupported_protocol'));
            return;
          }
          conn.welcomed = true;
          if (message.limits && typeof message.limits === 'object') {
            limits = Object.assign({}, limits, message.limits);
            if (Number.isInteger(limits.chat_max_chars) && limits.chat_max_chars > 0) {
              ui.chatInput.maxLength = limits.chat_max_chars;
            }
          }
          setConnectionState('open');
          resolve(conn);
          return;
        }
        handleMessage(message);
      });

      socket.addEventListener('close', (event) => {
        window.clearTimeout(welcomeTimer);
        window.clearInterval(conn.pingTimer);
        if (!conn.welcomed) {
          reject(new Error('closed before welcome'));
        }
        if (connection === conn) {
          connection = null;
          setConnectionState('closed');
          onConnectionLost(event);
        }
      });
    });
  }

  /** Closes a connection on purpose; its close event then changes nothing. */
  function dropConnection(conn) {
    const target = conn || connection;
    if (!target) {
      return;
    }
    if (connection === target) {
      connection = null;
      setConnectionState('idle');
    }
    window.clearInterval(target.pingTimer);
    try {
      target.socket.close(1000);
    } catch (_) {
      // Already closing.
    }
  }

  function send(message) {
    if (!connection || !connection.welcomed || connection.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    connection.socket.send(JSON.stringify(message));
    return true;
  }

  /** The text explaining why the server closed the connection, or null when it gave no reason. */
  function closeDetail(event) {
    const reason = event && typeof event.reason === 'string' ? event.reason : '';
    if (CLOSE_REASONS.has(reason)) {
      return 'end.lost.' + reason;
    }
    if (event && event.code === 1009) {
      return 'end.lost.too_large';
    }
    return null;
  }

  function onConnectionLost(event) {
    const detail = closeDetail(event);
    switch (session.phase) {
      case 'joining':
        session.phase = 'idle';
        setJoinBusy(false);
        showJoinError(detail || 'join.connect_failed');
        break;
      case 'lobby':
      case 'meeting':
        showEndScreen('lost', detail);
        break;
      case 'leaving':
        finishLeaving();
        break;
      default:
        if (detail && screen === 'join') {
          // For example too many wrong PINs: the error is shown already, add why the line dropped.
          setJoinInfo(detail);
        }
        break;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Joining

  /** The status line above the join form; it stays in the page so that changes are announced. */
  function setJoinInfo(key) {
    if (key) {
      bindText(ui.joinInfo, key);
    } else {
      ui.joinInfo.textContent = '';
      ui.joinInfo.removeAttribute('data-i18n');
    }
  }

  function setJoinBusy(busy, key) {
    ui.joinSubmit.setAttribute('aria-disabled', String(busy));
    ui.joinForm.classList.toggle('is-busy', busy);
    if (busy) {
      setJoinInfo(key);
    }
  }

  const JOIN_FIELDS = {
    room: { input: ui.joinRoom, error: $('join-room-error') },
    name: { input: ui.joinName, error: $('join-name-error') },
    pin: { input: ui.joinPin, error: $('join-pin-error') },
    secret: { input: ui.joinSecret, error: null },
  };

  const JOIN_ERROR_FIELD = {
    invalid_room: 'room',
    room_not_found: 'room',
    invalid_name: 'name',
    invalid_pin: 'pin',
    wrong_pin: 'pin',
    wrong_secret: 'secret',
    room_locked: 'secret',
  };

  function clearJoinErrors() {
    ui.joinError.textContent = '';
    ui.joinError.removeAttribute('data-i18n');
    for (const field of Object.values(JOIN_FIELDS)) {
      field.input.removeAttribute('aria-invalid');
      if (field.error) {
        field.error.textContent = '';
        field.error.removeAttribute('data-i18n');
      }
    }
  }

  function markInvalid(fieldName, key) {
    const field = JOIN_FIELDS[fieldName];
    field.input.setAttribute('aria-invalid', 'true');
    if (key && field.error) {
      bindText(field.error, key);
    }
    if (fieldName === 'secret') {
      ui.joinAdvanced.open = true;
    }
    return field.input;
  }

  function showJoinError(key, params, fieldName) {
    setJoinInfo(null);
    bindText(ui.joinError, key, params);
    if (fieldName) {
      markInvalid(fieldName).focus();
    }
  }

  function readJoinForm() {
    return {
      room: ui.joinRoom.value.trim(),
      name: ui.joinName.value.trim(),
      pin: ui.joinPin.value,
      secret: ui.joinSecret.value.trim(),
    };
  }

  /** Client-side checks mirroring the server's; returns the first invalid field or null. */
  function validateJoin(values) {
    const invalid = [];
    if (!ROOM_PATTERN.test(values.room)) {
      invalid.push(markInvalid('room', 'join.invalid.room'));
    }
    if (values.name.length < 1 || values.name.length > 64 || CONTROL_CHARACTERS.test(values.name)) {
      invalid.push(markInvalid('name', 'join.invalid.name'));
    }
    if (values.pin.length > 32) {
      invalid.push(markInvalid('pin', 'join.invalid.pin'));
    }
    return invalid[0] || null;
  }

  async function onJoinSubmit(event) {
    event.preventDefault();
    if (session.phase === 'joining') {
      return;
    }
    clearJoinErrors();
    const values = readJoinForm();
    const invalid = validateJoin(values);
    if (invalid) {
      invalid.focus();
      return;
    }
    await startJoin(values);
  }

  async function startJoin(values) {
    lastJoin = values;
    session = newSession();
    session.phase = 'joining';
    clearJoinErrors();
    if (screen !== 'join') {
      showScreen('join', { focus: false });
    }
    setJoinBusy(true, 'join.connecting');
    if (!connection || !connection.welcomed) {
      try {
        await openConnection();
      } catch (error) {
        if (session.phase !== 'joining') {
          // The close handler has already explained what happened.
          return;
        }
        session.phase = 'idle';
        setJoinBusy(false);
        if (error && error.message === 'unsupported_protocol') {
          showJoinError('error.unsupported_protocol');
        } else {
          showJoinError('join.connect_failed');
        }
        return;
      }
    }
    setJoinBusy(true, 'join.joining');
    const join = { type: 'join', protocol: PROTOCOL_VERSION, room: values.room, name: values.name };
    if (values.pin) {
      join.pin = values.pin;
    }
    if (values.secret) {
      join.moderator_secret = values.secret;
    }
    if (!send(join)) {
      session.phase = 'idle';
      setJoinBusy(false);
      showJoinError('join.connect_failed');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Leaving

  function leave() {
    if (session.phase !== 'lobby' && session.phase !== 'meeting') {
      return;
    }
    session.leavingFrom = session.phase;
    session.phase = 'leaving';
    if (!send({ type: 'leave' })) {
      finishLeaving();
      return;
    }
    window.setTimeout(() => {
      if (session.phase === 'leaving') {
        finishLeaving();
      }
    }, LEAVE_TIMEOUT_MS);
  }

  function finishLeaving() {
    const from = session.leavingFrom;
    dropConnection();
    showJoinScreen(from === 'lobby' ? 'join.left.lobby' : 'join.left.meeting');
  }

  // ---------------------------------------------------------------------------------------------
  // Messages from the server

  function toParticipant(value) {
    if (!value || typeof value !== 'object' || !Number.isSafeInteger(value.id)) {
      return null;
    }
    return {
      id: value.id,
      name: typeof value.name === 'string' ? value.name : '',
      role: value.role === 'moderator' ? 'moderator' : 'participant',
      hand: value.hand === true,
    };
  }

  function toLobbyEntries(list) {
    if (!Array.isArray(list)) {
      return [];
    }
    return list
      .filter((entry) => entry && Number.isSafeInteger(entry.id))
      .map((entry) => ({ id: entry.id, name: typeof entry.name === 'string' ? entry.name : '' }));
  }

  function nameOf(id) {
    const participant = session.participants.get(id);
    return participant ? participant.name : null;
  }

  function handleMessage(message) {
    switch (message.type) {
      case 'joined':
        onJoined(message);
        break;
      case 'lobby_waiting':
        onLobbyWaiting(message);
        break;
      case 'lobby_rejected':
        dropConnection();
        showEndScreen('rejected');
        break;
      case 'left':
        if (session.phase === 'leaving') {
          finishLeaving();
        }
        break;
      case 'lobby_changed':
        onLobbyChanged(message);
        break;
      case 'participant_joined':
        onParticipantJoined(message);
        break;
      case 'participant_updated':
        onParticipantUpdated(message);
        break;
      case 'participant_left':
        onParticipantLeft(message);
        break;
      case 'chat':
        onChat(message);
        break;
      case 'room_state':
        onRoomState(message);
        break;
      case 'mute_requested':
        onMuteRequested(message);
        break;
      case 'removed':
        dropConnection();
        showEndScreen('removed');
        break;
      case 'meeting_ended':
        dropConnection();
        showEndScreen('ended');
        break;
      case 'error':
        onError(typeof message.code === 'string' ? message.code : 'unknown');
        break;
      default:
        // welcome, pong and message types of later protocol revisions need nothing here.
        break;
    }
  }

  function onLobbyWaiting(message) {
    if (session.phase !== 'joining') {
      return;
    }
    session.phase = 'lobby';
    session.room = typeof message.room === 'string' ? message.room : lastJoin.room;
    setJoinBusy(false);
    setJoinInfo(null);
    bindText(ui.lobbyRoom, 'lobby.room', { room: session.room });
    showScreen('lobby');
  }

  function onJoined(message) {
    if (session.phase !== 'joining' && session.phase !== 'lobby') {
      return;
    }
    const admitted = session.phase === 'lobby';
    session.phase = 'meeting';
    session.room = typeof message.room === 'string' ? message.room : lastJoin.room;
    session.you = Number.isSafeInteger(message.you) ? message.you : null;
    session.role = message.role === 'moderator' ? 'moderator' : 'participant';
    session.moderatorSecret = typeof message.moderator_secret === 'string' ? message.moderator_secret : null;
    session.locked = message.locked === true;
    session.lobbyEnabled = message.lobby_enabled === true;
    session.participants = new Map();
    for (const value of Array.isArray(message.participants) ? message.participants : []) {
      const participant = toParticipant(value);
      if (participant) {
        session.participants.set(participant.id, participant);
      }
    }
    session.lobby = toLobbyEntries(message.lobby);
    const me = session.participants.get(session.you);
    session.hand = Boolean(me && me.hand);
    if (session.moderatorSecret && lastJoin) {
      // Lets a moderator who lost the connection come back as a moderator ("join again").
      lastJoin = Object.assign({}, lastJoin, { secret: session.moderatorSecret });
    }
    setJoinBusy(false);
    setJoinInfo(null);
    try {
      history.replaceState(null, '', '/?room=' + encodeURIComponent(session.room));
    } catch (_) {
      // Not essential.
    }
    resetChat();
    renderMeeting();
    showScreen('meeting');
    announce(admitted ? 'meeting.admitted' : 'meeting.joined');
  }

  function onLobbyChanged(message) {
    const before = new Set(session.lobby.map((entry) => entry.id));
    session.lobby = toLobbyEntries(message.lobby);
    for (const entry of session.lobby) {
      if (!before.has(entry.id)) {
        announce('announce.lobby.waiting', { name: entry.name });
      }
    }
    renderLobby();
  }

  function onParticipantJoined(message) {
    const participant = toParticipant(message.participant);
    if (!participant) {
      return;
    }
    session.participants.set(participant.id, participant);
    renderParticipants();
    if (participant.id !== session.you) {
      announce('announce.joined', { name: participant.name });
    }
  }

  function onParticipantUpdated(message) {
    const participant = toParticipant(message.participant);
    if (!participant) {
      return;
    }
    const before = session.participants.get(participant.id);
    session.participants.set(participant.id, participant);
    const isMe = participant.id === session.you;
    if (before && before.hand !== participant.hand) {
      if (isMe) {
        announce(participant.hand ? 'announce.hand.you.up' : 'announce.hand.you.down');
      } else {
        announce(participant.hand ? 'announce.hand.up' : 'announce.hand.down', { name: participant.name });
      }
    }
    if (before && before.role !== participant.role && participant.role === 'moderator') {
      announce('announce.role.moderator', { name: participant.name });
    }
    if (isMe) {
      session.hand = participant.hand;
      if (session.role !== participant.role) {
        session.role = participant.role;
        renderModeration();
      }
      renderHand();
    }
    renderParticipants();
  }

  function onParticipantLeft(message) {
    const id = message.participant;
    const name = nameOf(id);
    if (!session.participants.delete(id)) {
      return;
    }
    const reason = ['left', 'disconnected', 'removed', 'idle_timeout', 'too_slow'].includes(message.reason)
      ? message.reason
      : 'left';
    announce('announce.left.' + reason, { name });
    renderParticipants();
  }

  function onRoomState(message) {
    if (typeof message.locked === 'boolean' && message.locked !== session.locked) {
      session.locked = message.locked;
      announce(session.locked ? 'announce.locked' : 'announce.unlocked');
    }
    if (typeof message.lobby_enabled === 'boolean' && message.lobby_enabled !== session.lobbyEnabled) {
      session.lobbyEnabled = message.lobby_enabled;
      announce(session.lobbyEnabled ? 'announce.lobby.on' : 'announce.lobby.off');
    }
    renderSwitches();
  }

  function onMuteRequested(message) {
    const name = nameOf(message.by);
    if (name) {
      showNotice('notice.mute_requested', { name }, 'warning');
    } else {
      showNotice('notice.mute_requested.anonymous', null, 'warning');
    }
  }

  function onError(code) {
    const key = errorKey(code);
    const params = errorParams(code);
    if (session.phase === 'joining') {
      session.phase = 'idle';
      setJoinBusy(false);
      showJoinError(key, params, JOIN_ERROR_FIELD[code]);
      return;
    }
    if (CHAT_ERRORS.has(code) && screen === 'meeting') {
      bindText(ui.chatError, key, params);
      if (session.pendingChat !== null && ui.chatInput.value === '') {
        ui.chatInput.value = session.pendingChat;
      }
      session.pendingChat = null;
      return;
    }
    if (code === 'unknown_participant') {
      // Re-enable the lobby buttons that were waiting for an answer.
      renderLobby();
    }
    showNotice(key, params, 'error');
  }

  // ---------------------------------------------------------------------------------------------
  // Meeting rendering

  function renderMeeting() {
    bindText(ui.meetingTitle, 'meeting.title', { room: session.room });
    renderParticipants();
    renderHand();
    renderModeration();
    renderPanels();
  }

  function sortedParticipants() {
    const list = Array.from(session.participants.values());
    // Yourself first, then in the order of joining.
    return list.sort((a, b) => (b.id === session.you) - (a.id === session.you));
  }

  function participantItem(participant) {
    const item = element('li', 'person');
    item.dataset.participantId = String(participant.id);
    item.dataset.role = participant.role;
    item.dataset.hand = String(participant.hand);
    const isMe = participant.id === session.you;

    const main = element('div', 'person-main');
    const name = element('span', 'person-name', participant.name);
    name.setAttribute('dir', 'auto');
    main.append(name);
    if (isMe) {
      const you = element('span', 'person-you');
      bindText(you, 'participants.you');
      main.append(' ', you);
    }
    const tags = element('span', 'person-tags');
    const role = element('span', 'tag tag-role tag-' + participant.role);
    bindText(role, 'role.' + participant.role);
    tags.append(role);
    if (participant.hand) {
      const hand = element('span', 'tag tag-hand');
      hand.dataset.hand = 'raised';
      hand.append(ui.handIconTemplate.content.cloneNode(true));
      const label = element('span', '');
      bindText(label, 'hand.raised');
      hand.append(label);
      tags.append(hand);
    }
    main.append(tags);
    item.append(main);

    if (session.role === 'moderator' && !isMe) {
      const actions = element('div', 'person-actions');
      actions.append(
        actionButton('ask_mute', participant.id, 'participant.ask_mute', 'participant.ask_mute.label', participant.name),
        actionButton('remove', participant.id, 'participant.remove', 'participant.remove.label', participant.name, 'button-danger-quiet'),
      );
      item.append(actions);
    }
    return item;
  }

  function renderParticipants() {
    rebuildKeepingFocus(ui.participants, ui.headings.meeting, () => {
      ui.participants.replaceChildren(...sortedParticipants().map(participantItem));
    });
    ui.participantCount.textContent = String(session.participants.size);
  }

  function renderHand() {
    ui.handToggle.setAttribute('aria-pressed', String(session.hand));
  }

  function renderSwitch(button, on) {
    button.setAttribute('aria-checked', String(on));
    bindText(button.querySelector('.switch-state'), on ? 'switch.on' : 'switch.off');
  }

  function renderSwitches() {
    renderSwitch(ui.lockToggle, session.locked);
    renderSwitch(ui.lobbyToggle, session.lobbyEnabled);
  }

  function renderLobby() {
    rebuildKeepingFocus(ui.lobbyList, ui.lobbyListTitle, () => {
      ui.lobbyList.replaceChildren(...session.lobby.map((entry) => {
        const item = element('li', 'person');
        item.dataset.participantId = String(entry.id);
        const main = element('div', 'person-main');
        const name = element('span', 'person-name', entry.name);
        name.setAttribute('dir', 'auto');
        main.append(name);
        const actions = element('div', 'person-actions');
        actions.append(
          actionButton('admit', entry.id, 'mod.admit', 'mod.admit.label', entry.name, 'button-primary'),
          actionButton('reject', entry.id, 'mod.reject', 'mod.reject.label', entry.name),
        );
        item.append(main, actions);
        return item;
      }));
    });
    const waiting = session.lobby.length;
    ui.lobbyCount.textContent = String(waiting);
    ui.lobbyEmpty.hidden = waiting > 0;
    ui.moderatorBadge.hidden = waiting === 0;
    bindText(ui.moderatorBadge, 'controls.waiting', { count: waiting });
  }

  function renderModeration() {
    const isModerator = session.role === 'moderator';
    ui.moderatorToggle.hidden = !isModerator;
    ui.moderatorSecret.value = session.moderatorSecret || '';
    ui.moderatorSecret.closest('.field').hidden = !session.moderatorSecret;
    renderSwitches();
    renderLobby();
    renderPanels();
  }

  function renderPanels() {
    const isModerator = session.role === 'moderator';
    ui.participantsPanel.hidden = !panelOpen.participants;
    ui.chatPanel.hidden = !panelOpen.chat;
    ui.moderatorPanel.hidden = !(isModerator && panelOpen.moderation);
    ui.participantsToggle.setAttribute('aria-expanded', String(panelOpen.participants));
    ui.chatToggle.setAttribute('aria-expanded', String(panelOpen.chat));
    ui.moderatorToggle.setAttribute('aria-expanded', String(panelOpen.moderation));
    const sideOpen = panelOpen.participants || panelOpen.chat;
    ui.sidePanels.hidden = !sideOpen;
    ui.meetingBody.classList.toggle('no-panels', !sideOpen);
    if (panelOpen.chat) {
      session.unread = 0;
    }
    renderUnread();
  }

  function renderUnread() {
    ui.chatUnread.hidden = session.unread === 0;
    bindText(ui.chatUnread, 'chat.unread', { count: session.unread });
  }

  function togglePanel(name, panel) {
    panelOpen[name] = !panelOpen[name];
    renderPanels();
    if (panelOpen[name]) {
      panel.scrollIntoView({ block: 'nearest' });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Chat

  function resetChat() {
    for (const message of ui.chatLog.querySelectorAll('.chat-message')) {
      message.remove();
    }
    ui.chatEmpty.hidden = false;
    ui.chatError.textContent = '';
    ui.chatError.removeAttribute('data-i18n');
    ui.chatInput.value = '';
  }

  function twoDigits(value) {
    return String(value).padStart(2, '0');
  }

  function onChat(message) {
    if (typeof message.text !== 'string') {
      return;
    }
    const from = Number.isSafeInteger(message.from) ? message.from : null;
    const own = from !== null && from === session.you;
    const log = ui.chatLog;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;

    const item = element('div', 'chat-message' + (own ? ' chat-own' : ''));
    if (Number.isSafeInteger(message.seq)) {
      item.dataset.seq = String(message.seq);
    }
    const meta = element('p', 'chat-meta');
    const name = element('span', 'chat-name', typeof message.name === 'string' ? message.name : '');
    name.setAttribute('dir', 'auto');
    meta.append(name);
    if (own) {
      const you = element('span', 'chat-you');
      bindText(you, 'chat.you');
      meta.append(' ', you);
    }
    const now = new Date();
    const time = element('time', 'chat-time', twoDigits(now.getHours()) + ':' + twoDigits(now.getMinutes()));
    time.dateTime = now.toISOString();
    meta.append(' ', time);
    const text = element('p', 'chat-text', message.text);
    text.setAttribute('dir', 'auto');
    item.append(meta, text);

    ui.chatEmpty.hidden = true;
    log.append(item);
    const messages = log.querySelectorAll('.chat-message');
    for (let i = 0; i < messages.length - MAX_CHAT_ELEMENTS; i += 1) {
      messages[i].remove();
    }
    if (own || nearBottom) {
      log.scrollTop = log.scrollHeight;
    }
    if (own) {
      session.pendingChat = null;
      ui.chatError.textContent = '';
      ui.chatError.removeAttribute('data-i18n');
    }
    if (!panelOpen.chat && !own) {
      session.unread += 1;
      renderUnread();
    }
  }

  function onChatSubmit(event) {
    event.preventDefault();
    const text = ui.chatInput.value;
    if (text.trim() === '') {
      bindText(ui.chatError, 'error.invalid_text');
      return;
    }
    if (text.length > limits.chat_max_chars) {
      bindText(ui.chatError, 'error.chat_too_long', errorParams('chat_too_long'));
      return;
    }
    if (send({ type: 'chat', text })) {
      session.pendingChat = text;
      ui.chatInput.value = '';
      ui.chatError.textContent = '';
      ui.chatError.removeAttribute('data-i18n');
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Moderation

  function confirmAction(titleKey, textKey, okKey, params) {
    if (confirmResolve) {
      confirmResolve(false);
    }
    return new Promise((resolve) => {
      bindText(ui.confirmTitle, titleKey, params);
      bindText(ui.confirmText, textKey, params);
      bindText(ui.confirmOk, okKey, params);
      confirmResolve = resolve;
      ui.confirmDialog.returnValue = '';
      ui.confirmDialog.showModal();
      ui.confirmCancel.focus();
    });
  }

  async function onParticipantAction(event) {
    const button = event.target.closest('button[data-action]');
    if (!button) {
      return;
    }
    const id = Number(button.dataset.participantId);
    const name = nameOf(id) || '';
    if (button.dataset.action === 'ask_mute') {
      if (send({ type: 'ask_mute', participant: id })) {
        showNotice('notice.mute_sent', { name }, 'info');
      }
    } else if (button.dataset.action === 'remove') {
      const sure = await confirmAction('confirm.remove.title', 'confirm.remove.text', 'confirm.remove.ok', { name });
      if (sure) {
        send({ type: 'remove', participant: id });
      }
    }
  }

  function onLobbyAction(event) {
    const button = event.target.closest('button[data-action]');
    if (!button || button.getAttribute('aria-disabled') === 'true') {
      return;
    }
    const id = Number(button.dataset.participantId);
    if (button.dataset.action === 'admit' || button.dataset.action === 'reject') {
      if (send({ type: button.dataset.action, participant: id })) {
        for (const sibling of button.parentElement.querySelectorAll('button')) {
          sibling.setAttribute('aria-disabled', 'true');
        }
      }
    }
  }

  function fallbackCopy(text) {
    const area = element('textarea', 'visually-hidden');
    area.value = text;
    area.setAttribute('readonly', '');
    area.setAttribute('aria-hidden', 'true');
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand('copy');
    } catch (_) {
      copied = false;
    }
    area.remove();
    return copied;
  }

  async function copyText(text, doneKey, returnFocusTo) {
    let copied = false;
    try {
      await navigator.clipboard.writeText(text);
      copied = true;
    } catch (_) {
      copied = fallbackCopy(text);
      if (returnFocusTo) {
        returnFocusTo.focus();
      }
    }
    showNotice(copied ? doneKey : 'mod.copy_failed', null, copied ? 'info' : 'error');
  }

  async function onEndMeeting() {
    const sure = await confirmAction('confirm.end.title', 'confirm.end.text', 'confirm.end.ok');
    if (sure) {
      send({ type: 'end_meeting' });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring

  function prefillFromUrl() {
    let room = new URLSearchParams(location.search).get('room');
    if (!room && location.hash.length > 1) {
      try {
        room = decodeURIComponent(location.hash.slice(1));
      } catch (_) {
        room = null;
      }
    }
    if (room && ROOM_PATTERN.test(room)) {
      ui.joinRoom.value = room;
    }
  }

  function wire() {
    for (const button of ui.langButtons) {
      button.addEventListener('click', () => setLanguage(button.dataset.lang, true));
    }
    ui.joinForm.addEventListener('submit', onJoinSubmit);
    ui.lobbyLeave.addEventListener('click', leave);
    ui.leave.addEventListener('click', leave);
    ui.handToggle.addEventListener('click', () => {
      send({ type: 'hand', raised: !session.hand });
    });
    ui.participantsToggle.addEventListener('click', () => togglePanel('participants', ui.participantsPanel));
    ui.chatToggle.addEventListener('click', () => togglePanel('chat', ui.chatPanel));
    ui.moderatorToggle.addEventListener('click', () => togglePanel('moderation', ui.moderatorPanel));
    ui.chatForm.addEventListener('submit', onChatSubmit);
    ui.participants.addEventListener('click', onParticipantAction);
    ui.lobbyList.addEventListener('click', onLobbyAction);
    ui.lockToggle.addEventListener('click', () => send({ type: 'lock', locked: !session.locked }));
    ui.lobbyToggle.addEventListener('click', () => send({ type: 'set_lobby', enabled: !session.lobbyEnabled }));
    ui.secretShow.addEventListener('click', () => {
      const show = ui.moderatorSecret.type === 'password';
      ui.moderatorSecret.type = show ? 'text' : 'password';
      ui.secretShow.setAttribute('aria-pressed', String(show));
    });
    ui.secretCopy.addEventListener('click', () => {
      if (session.moderatorSecret) {
        copyText(session.moderatorSecret, 'mod.secret.copied', ui.secretCopy);
      }
    });
    ui.copyLink.addEventListener('click', () => {
      if (session.room) {
        copyText(location.origin + '/?room=' + encodeURIComponent(session.room), 'mod.link.copied', ui.copyLink);
      }
    });
    ui.endMeeting.addEventListener('click', onEndMeeting);
    ui.confirmOk.addEventListener('click', () => ui.confirmDialog.close('ok'));
    ui.confirmCancel.addEventListener('click', () => ui.confirmDialog.close('cancel'));
    ui.confirmDialog.addEventListener('close', () => {
      const resolve = confirmResolve;
      confirmResolve = null;
      if (resolve) {
        resolve(ui.confirmDialog.returnValue === 'ok');
      }
    });
    ui.endBack.addEventListener('click', () => {
      dropConnection();
      if (lastJoin) {
        ui.joinRoom.value = lastJoin.room;
        ui.joinName.value = lastJoin.name;
        ui.joinSecret.value = lastJoin.secret || '';
      }
      showJoinScreen(null);
    });
    ui.endRejoin.addEventListener('click', () => {
      if (lastJoin) {
        ui.joinSecret.value = lastJoin.secret || '';
        startJoin(lastJoin);
      }
    });
    window.addEventListener('pagehide', () => dropConnection());
  }

  /** Shows the operator's notice from `/info` (for example a security warning) in the footer. */
  async function loadServerNotice() {
    try {
      const response = await fetch('/info', { cache: 'no-store', credentials: 'same-origin' });
      if (!response.ok) {
        return;
      }
      const info = await response.json();
      if (info && typeof info.notice === 'string' && info.notice.trim() !== '') {
        ui.footerNotice.textContent = info.notice;
        ui.footerNotice.hidden = false;
      }
    } catch (_) {
      // The footer then shows no notice; nothing else depends on it.
    }
  }

  function start() {
    setLanguage(storedLanguage() || I18N.detect(navigator.language), false);
    setConnectionState('idle');
    prefillFromUrl();
    wire();
    ui.joinSubmit.disabled = false;
    loadServerNotice();
  }

  start();
}());
