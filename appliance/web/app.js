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
    stage: $('stage'),
    stagePlaceholder: $('stage-placeholder'),
    videoGrid: $('video-grid'),
    remoteAudio: $('remote-audio'),
    devicesPanel: $('devices-panel'),
    cameraSelect: $('camera-select'),
    microphoneSelect: $('microphone-select'),
    micToggle: $('mic-toggle'),
    cameraToggle: $('camera-toggle'),
    screenToggle: $('screen-toggle'),
    audioOnlyToggle: $('audio-only-toggle'),
    devicesToggle: $('devices-toggle'),
    micOffIconTemplate: $('tpl-mic-off-icon'),
    cameraOffIconTemplate: $('tpl-camera-off-icon'),
    speakingIconTemplate: $('tpl-speaking-icon'),
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
  let limits = { max_message_bytes: 65536, chat_max_chars: 2000, idle_timeout_secs: 60 };
  /** The values of the last join attempt, kept in memory only, for "join again". */
  let lastJoin = null;
  /** Panels the person has opened or closed; kept across sessions of this page. */
  const panelOpen = { participants: true, chat: true, moderation: true, devices: false };
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
    stopMedia();
    session = newSession();
    setJoinBusy(false);
    setJoinInfo(infoKey);
    showScreen('join');
  }

  /** The end of a session: removed, meeting ended, lobby rejected or connection lost. */
  function showEndScreen(kind, detailKey) {
    stopMedia();
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
    // Devices off and media connections closed at once, not only when the server confirms.
    stopMedia();
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
      media: toMediaFlags(value.media),
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
      case 'publish_answer':
        onPublishAnswer(message);
        break;
      case 'subscribe_offer':
        onSubscribeOffer(message);
        break;
      case 'media_reset':
        onMediaReset();
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
    startMedia();
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
    if (before && !isMe && !before.media.screen && participant.media.screen) {
      announce('announce.screen.started', { name: participant.name });
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
    if (onMediaError(code)) {
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
    renderStage();
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
    ui.devicesPanel.hidden = !panelOpen.devices;
    ui.devicesToggle.setAttribute('aria-expanded', String(panelOpen.devices));
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
  // Media (docs/protocol.md, "Media")
  //
  // Two peer connections per meeting. "publish" only sends and this client offers on it; "subscribe"
  // only receives and the server offers on it. Every local source (microphone, camera, screen) has
  // its own sendonly transceiver: turning the camera off or ending a screen share stops that
  // transceiver and sends a new offer, turning it on adds a new transceiver and offers again.
  // Muting only disables the microphone track; switching devices replaces the track in place.
  // Offers on the publish connection go out one at a time: a change made while one is outstanding
  // is offered after its answer.
  //
  // With max-bundle, browsers can neither offer a session whose media sections are all stopped
  // nor accept an answer that removes an established section. So the last remaining transceiver
  // is never stopped: it is "parked" (no track, direction inactive, not listed in `tracks`) and
  // taken up again by the next source of its kind. Should the browser still refuse an answer
  // (a refusal spoils the connection for good), the client publishes anew on a fresh connection;
  // the server takes the new ICE and DTLS credentials as a restart.

  const PEER_CONNECTION_CONFIG = { iceServers: [], bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' };
  const SOURCES = ['microphone', 'camera', 'screen'];
  const REMOTE_KINDS = new Set(['audio', 'video']);
  const PUBLISH_ANSWER_TIMEOUT_MS = 15000;
  // Errors that answer an outstanding `publish` (the others concern other messages).
  const PUBLISH_ERRORS = new Set([
    'invalid_sdp', 'invalid_tracks', 'media_unavailable', 'unknown_type', 'malformed', 'too_large', 'not_joined',
  ]);
  // The header extensions the server negotiates; offering others only makes the SDP longer.
  // abs-send-time is known by its name: its identifier is a web address, and this file names none.
  function negotiatedExtension(uri, kind) {
    return uri === 'urn:ietf:params:rtp-hdrext:sdes:mid' ||
      (kind === 'audio' && uri === 'urn:ietf:params:rtp-hdrext:ssrc-audio-level') ||
      (kind === 'video' && /\/abs-send-time$/.test(uri));
  }
  const LEVEL_INTERVAL_MS = 150;
  const SPEAKING_RMS = 0.02;
  const SPEAKING_HOLD_MS = 700;

  /** The person's media choices; kept in memory across the sessions of this page. */
  const prefs = {
    micMuted: false,
    cameraWanted: true,
    audioOnly: false,
    deviceId: { microphone: null, camera: null },
  };

  /** Media state of one meeting; replaced when the meeting starts and when it ends. */
  function newMedia() {
    return {
      active: false,
      publish: null,
      subscribe: null,
      tracks: { microphone: null, camera: null, screen: null },
      transceivers: { microphone: null, camera: null, screen: null },
      // Inactive transceivers kept so that the publish offer always has a media section.
      parked: { audio: null, video: null },
      // Settles when pending replaceTrack calls are done; offers wait for it.
      ready: Promise.resolve(),
      busy: { microphone: false, camera: false, screen: false },
      negotiating: false,
      renegotiate: false,
      // Fresh publish connections in a row after refused answers; limited.
      restarts: 0,
      answerWaiter: null,
      subscribeChain: Promise.resolve(),
      // mid → { mid, participant, source, kind, track, transceiver } of the subscribe connection.
      remote: new Map(),
      audioElements: new Map(),
      lastState: JSON.stringify({ microphone: false, camera: false, screen: false }),
      serverHasMedia: true,
      noticesShown: new Set(),
    };
  }

  let media = newMedia();
  let audioContext = null;
  /** Audio level meters: key → { participant, track, source, analyser, buffer, until }. */
  const meters = new Map();
  let meterTimer = null;
  /** IDs of the participants whose audio is above the speaking threshold. */
  const speaking = new Set();
  let playbackBlocked = false;

  function toMediaFlags(value) {
    const flags = value && typeof value === 'object' ? value : {};
    return {
      microphone: flags.microphone === true,
      camera: flags.camera === true,
      screen: flags.screen === true,
    };
  }

  function mediaDevicesAvailable() {
    return Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getUserMedia === 'function');
  }

  function peerConnectionsAvailable() {
    return typeof window.RTCPeerConnection === 'function';
  }

  function canShareScreen() {
    return Boolean(navigator.mediaDevices && typeof navigator.mediaDevices.getDisplayMedia === 'function');
  }

  function isStopped(transceiver) {
    return !transceiver || transceiver.stopped === true || transceiver.direction === 'stopped' ||
      transceiver.currentDirection === 'stopped';
  }

  function stopTrack(track) {
    if (track) {
      track.stop();
    }
  }

  /** A notice about the media connections, shown at most once per meeting. */
  function mediaNoticeOnce(current, key) {
    if (!current.noticesShown.has(key)) {
      current.noticesShown.add(key);
      showNotice(key, null, 'warning');
    }
  }

  // --- Local devices ---------------------------------------------------------------------------

  function audioConstraints(exact) {
    const constraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    const id = prefs.deviceId.microphone;
    if (id) {
      constraints.deviceId = exact ? { exact: id } : { ideal: id };
    }
    return constraints;
  }

  function videoConstraints(exact) {
    const constraints = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 24, max: 30 } };
    const id = prefs.deviceId.camera;
    if (id) {
      constraints.deviceId = exact ? { exact: id } : { ideal: id };
    }
    return constraints;
  }

  function errorName(error) {
    return error && typeof error.name === 'string' ? error.name : 'Error';
  }

  function deviceErrorKey(source, name) {
    switch (name) {
      case 'NotAllowedError':
      case 'SecurityError':
        return 'media.denied.' + source;
      case 'NotFoundError':
      case 'OverconstrainedError':
        return 'media.missing.' + source;
      case 'NotReadableError':
      case 'AbortError':
        return 'media.busy.' + source;
      default:
        return 'media.failed.' + source;
    }
  }

  function reportDeviceFailures(failures) {
    const microphone = failures.microphone ? deviceErrorKey('microphone', failures.microphone) : null;
    const camera = failures.camera ? deviceErrorKey('camera', failures.camera) : null;
    if (microphone && camera && microphone.split('.')[1] === camera.split('.')[1] &&
        (camera.startsWith('media.denied.') || camera.startsWith('media.missing.'))) {
      showNotice(camera.replace(/camera$/, 'both'), null, 'warning');
      return;
    }
    for (const key of [microphone, camera]) {
      if (key) {
        showNotice(key, null, 'warning');
      }
    }
  }

  /**
   * Asks for the microphone and/or the camera. Never throws: every failure becomes a localized
   * notice and the meeting goes on without that device. Resolves { microphone, camera } tracks.
   */
  async function acquire(wantMicrophone, wantCamera, exact) {
    const got = { microphone: null, camera: null };
    if (!mediaDevicesAvailable()) {
      showNotice('media.unsupported', null, 'warning');
      return got;
    }
    // Before permission is granted browsers still list one entry per kind that exists, so a
    // missing device is known without asking for it.
    let present = { microphone: true, camera: true };
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      present = {
        microphone: devices.some((device) => device.kind === 'audioinput'),
        camera: devices.some((device) => device.kind === 'videoinput'),
      };
    } catch (_) {
      // Ask anyway; getUserMedia reports what is missing.
    }
    const failures = {};
    const ask = { microphone: wantMicrophone && present.microphone, camera: wantCamera && present.camera };
    if (wantMicrophone && !present.microphone) {
      failures.microphone = 'NotFoundError';
    }
    if (wantCamera && !present.camera) {
      failures.camera = 'NotFoundError';
    }
    const request = async (microphone, camera) => {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: microphone ? audioConstraints(exact) : false,
        video: camera ? videoConstraints(exact) : false,
      });
      return { microphone: stream.getAudioTracks()[0] || null, camera: stream.getVideoTracks()[0] || null };
    };
    if (ask.microphone || ask.camera) {
      try {
        const result = await request(ask.microphone, ask.camera);
        got.microphone = result.microphone;
        got.camera = result.camera;
      } catch (error) {
        if (ask.microphone && ask.camera) {
          // One of the two may still work on its own (say, a camera held by another program).
          for (const source of ['microphone', 'camera']) {
            try {
              got[source] = (await request(source === 'microphone', source === 'camera'))[source];
            } catch (singleError) {
              failures[source] = errorName(singleError);
            }
          }
        } else {
          failures[ask.microphone ? 'microphone' : 'camera'] = errorName(error);
        }
      }
    }
    reportDeviceFailures(failures);
    return got;
  }

  function deviceOption(value, key, params) {
    const option = element('option');
    option.value = value;
    bindText(option, key, params);
    return option;
  }

  function fillDeviceSelect(select, devices, source) {
    const track = media.tracks[source];
    const settings = track && typeof track.getSettings === 'function' ? track.getSettings() : {};
    const selected = settings.deviceId || prefs.deviceId[source] || '';
    let options;
    if (devices.length === 0) {
      options = [deviceOption('', 'devices.none.' + source)];
    } else if (devices.every((device) => !device.deviceId)) {
      // Not yet allowed: the browser hides the devices' names and IDs.
      options = [deviceOption('', 'devices.default.' + source)];
    } else {
      options = devices.filter((device) => device.deviceId).map((device, index) => {
        if (device.label) {
          const option = element('option', '', device.label);
          option.value = device.deviceId;
          return option;
        }
        return deviceOption(device.deviceId, 'devices.unnamed.' + source, { n: index + 1 });
      });
    }
    select.replaceChildren(...options);
    select.disabled = devices.length === 0;
    if (options.some((option) => option.value === selected)) {
      select.value = selected;
    }
  }

  async function refreshDevices() {
    if (!navigator.mediaDevices || typeof navigator.mediaDevices.enumerateDevices !== 'function') {
      fillDeviceSelect(ui.cameraSelect, [], 'camera');
      fillDeviceSelect(ui.microphoneSelect, [], 'microphone');
      return;
    }
    let devices = [];
    try {
      devices = await navigator.mediaDevices.enumerateDevices();
    } catch (_) {
      devices = [];
    }
    fillDeviceSelect(ui.cameraSelect, devices.filter((device) => device.kind === 'videoinput'), 'camera');
    fillDeviceSelect(ui.microphoneSelect, devices.filter((device) => device.kind === 'audioinput'), 'microphone');
  }

  // --- Publish connection ----------------------------------------------------------------------

  function ensurePublishConnection(current) {
    if (!current.publish) {
      const pc = new RTCPeerConnection(PEER_CONNECTION_CONFIG);
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed' && media === current && current.active) {
          mediaNoticeOnce(current, 'media.connection_failed');
        }
      });
      current.publish = pc;
    }
    return current.publish;
  }

  /** Offers only what the server accepts: Opus; VP8, then H.264 in packetization mode 1. */
  function limitCodecs(transceiver, kind) {
    if (typeof transceiver.setCodecPreferences !== 'function' || !window.RTCRtpReceiver ||
        typeof RTCRtpReceiver.getCapabilities !== 'function') {
      return;
    }
    const capabilities = RTCRtpReceiver.getCapabilities(kind);
    if (!capabilities || !Array.isArray(capabilities.codecs)) {
      return;
    }
    const mime = (codec) => String(codec.mimeType).toLowerCase();
    let codecs;
    if (kind === 'audio') {
      codecs = capabilities.codecs.filter((codec) => mime(codec) === 'audio/opus');
    } else {
      const h264 = capabilities.codecs
        .filter((codec) => mime(codec) === 'video/h264' && /packetization-mode=1/.test(codec.sdpFmtpLine || ''))
        .sort((a, b) => /profile-level-id=42e01f/.test(b.sdpFmtpLine) - /profile-level-id=42e01f/.test(a.sdpFmtpLine));
      codecs = capabilities.codecs.filter((codec) => mime(codec) === 'video/vp8').concat(h264.slice(0, 1));
    }
    if (codecs.length === 0) {
      return;
    }
    try {
      transceiver.setCodecPreferences(codecs);
    } catch (_) {
      // The browser's defaults then apply; the server picks what it supports.
    }
  }

  function limitHeaderExtensions(transceiver, kind) {
    if (typeof transceiver.getHeaderExtensionsToNegotiate !== 'function' ||
        typeof transceiver.setHeaderExtensionsToNegotiate !== 'function') {
      return;
    }
    try {
      const extensions = transceiver.getHeaderExtensionsToNegotiate().map((extension) => ({
        uri: extension.uri,
        direction: negotiatedExtension(extension.uri, kind) ? extension.direction : 'stopped',
      }));
      transceiver.setHeaderExtensionsToNegotiate(extensions);
    } catch (_) {
      // Unneeded extensions are then offered and the server leaves them out of its answer.
    }
  }

  function addSource(current, source, track) {
    current.tracks[source] = track;
    if (source === 'microphone') {
      track.enabled = !prefs.micMuted;
    }
    if ('contentHint' in track) {
      track.contentHint = source === 'screen' ? 'detail' : source === 'camera' ? 'motion' : 'speech';
    }
    track.addEventListener('ended', () => onLocalTrackEnded(current, source, track));
    publishTrack(current, source, track);
    if (source === 'microphone') {
      attachMeter('local', session.you, track);
    }
  }

  /** Gives `track` a sending transceiver: a parked one of its kind, else a new one. */
  function publishTrack(current, source, track) {
    const pc = ensurePublishConnection(current);
    let transceiver = current.parked[track.kind];
    current.parked[track.kind] = null;
    if (transceiver && !isStopped(transceiver)) {
      transceiver.direction = 'sendonly';
      const replaced = transceiver.sender.replaceTrack(track).catch(() => {});
      current.ready = current.ready.then(() => replaced);
    } else {
      transceiver = pc.addTransceiver(track, { direction: 'sendonly' });
      limitCodecs(transceiver, track.kind);
      limitHeaderExtensions(transceiver, track.kind);
    }
    current.transceivers[source] = transceiver;
  }

  /**
   * Closes the publish connection and moves the live sources to a new one. True when there is
   * something to offer on it.
   */
  function replacePublishConnection(current) {
    const old = current.publish;
    current.publish = null;
    current.parked = { audio: null, video: null };
    for (const source of SOURCES) {
      current.transceivers[source] = null;
    }
    if (old) {
      old.close();
    }
    let live = false;
    for (const source of SOURCES) {
      const track = current.tracks[source];
      if (track && track.readyState === 'live') {
        publishTrack(current, source, track);
        live = true;
      }
    }
    return live;
  }

  /** Stops a local source and its transceiver; `offer` sends the new offer that ends it. */
  function removeSource(current, source, offer) {
    const track = current.tracks[source];
    const transceiver = current.transceivers[source];
    current.tracks[source] = null;
    current.transceivers[source] = null;
    if (source === 'microphone') {
      detachMeter('local');
    }
    if (transceiver) {
      retireTransceiver(current, transceiver);
    }
    stopTrack(track);
    renderMediaControls();
    renderStage();
    sendMediaState();
    if (offer !== false) {
      negotiatePublish(current);
    }
  }

  /** Stops a transceiver that no longer sends, or parks it if it is the last one. */
  function retireTransceiver(current, transceiver) {
    if (isStopped(transceiver) || !current.publish) {
      return;
    }
    const kind = transceiver.receiver.track.kind;
    const others = current.publish.getTransceivers().some((other) => other !== transceiver && !isStopped(other));
    if (others || transceiver.mid === null || current.parked[kind]) {
      try {
        transceiver.stop();
      } catch (_) {
        // Already stopped by the connection closing.
      }
      return;
    }
    transceiver.direction = 'inactive';
    const replaced = transceiver.sender.replaceTrack(null).catch(() => {});
    current.ready = current.ready.then(() => replaced);
    current.parked[kind] = transceiver;
  }

  function onLocalTrackEnded(current, source, track) {
    if (media !== current || !current.active || current.tracks[source] !== track) {
      return;
    }
    removeSource(current, source);
    if (source === 'screen') {
      // The browser's own "stop sharing" button ends the track.
      announce('announce.screen.off');
    } else {
      showNotice('media.lost.' + source, null, 'warning');
    }
  }

  function waitForPublishAnswer(current) {
    return new Promise((resolve, reject) => {
      const waiter = {};
      const settle = (sdp, code) => {
        window.clearTimeout(timer);
        if (current.answerWaiter === waiter) {
          current.answerWaiter = null;
        }
        if (code) {
          const error = new Error(code);
          error.code = code;
          reject(error);
        } else {
          resolve(sdp);
        }
      };
      const timer = window.setTimeout(() => settle(null, 'timeout'), PUBLISH_ANSWER_TIMEOUT_MS);
      waiter.resolve = (sdp) => settle(sdp, null);
      waiter.reject = (code) => settle(null, code);
      current.answerWaiter = waiter;
    });
  }

  async function publishOnce(current) {
    const pc = current.publish;
    await current.ready;
    if (media !== current || !pc.getTransceivers().some((transceiver) => !isStopped(transceiver))) {
      // Nothing was ever negotiated (a section that never was is simply dropped).
      return;
    }
    const offer = await pc.createOffer();
    if (media !== current) {
      return;
    }
    await pc.setLocalDescription(offer);
    // Media section IDs are known once the offer is the local description.
    const tracks = [];
    for (const source of SOURCES) {
      const transceiver = current.transceivers[source];
      if (transceiver && !isStopped(transceiver) && transceiver.mid !== null) {
        tracks.push({ mid: transceiver.mid, source });
      }
    }
    const answer = waitForPublishAnswer(current);
    if (!send({ type: 'publish', sdp: pc.localDescription.sdp, tracks })) {
      current.answerWaiter.reject('not_connected');
    }
    const sdp = await answer;
    if (media !== current || pc.signalingState !== 'have-local-offer') {
      return;
    }
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (_) {
      const error = new Error('answer_refused');
      error.code = 'answer_refused';
      throw error;
    }
  }

  /** Sends a new publish offer, or queues one if an offer is outstanding. */
  async function negotiatePublish(current) {
    if (media !== current || !current.active || !current.publish || !current.serverHasMedia) {
      return;
    }
    if (current.negotiating) {
      current.renegotiate = true;
      return;
    }
    current.negotiating = true;
    let failed = false;
    let again = false;
    try {
      do {
        current.renegotiate = false;
        await publishOnce(current);
      } while (current.renegotiate && media === current && current.active);
      current.restarts = 0;
    } catch (error) {
      failed = true;
      if (media === current && current.active) {
        again = await onPublishFailed(current, error);
      }
    } finally {
      current.negotiating = false;
    }
    if (media !== current || !current.active) {
      return;
    }
    if (!failed) {
      dropRejectedSources(current);
    }
    renderMediaControls();
    renderStage();
    sendMediaState();
    if (again || (failed && current.renegotiate && current.publish)) {
      // A fresh connection, or a change made during the failed attempt, gets its own offer.
      negotiatePublish(current);
    }
  }

  /** Cleans up after a failed offer; true when a new offer should follow at once. */
  async function onPublishFailed(current, error) {
    if (error && error.code === 'answer_refused') {
      // The server took the offer, but this browser refused its answer and will refuse
      // everything on this connection from now on. Whatever is still live moves to a new one.
      if (!replacePublishConnection(current)) {
        return false;
      }
      current.restarts += 1;
      if (current.restarts <= 2) {
        return true;
      }
      mediaNoticeOnce(current, 'media.publish_failed');
      return false;
    }
    const pc = current.publish;
    if (pc && pc.signalingState === 'have-local-offer') {
      try {
        await pc.setLocalDescription({ type: 'rollback' });
      } catch (_) {
        // The next offer replaces it.
      }
    }
    const code = error && typeof error.code === 'string' ? error.code : 'failed';
    if (code === 'closed' || code === 'not_connected') {
      return false;
    }
    if (code === 'unknown_type') {
      // This server has no media plane; chat and the participant list still work.
      current.serverHasMedia = false;
      mediaNoticeOnce(current, 'error.media_unavailable');
      return false;
    }
    const own = ['invalid_sdp', 'invalid_tracks', 'media_unavailable'].includes(code);
    mediaNoticeOnce(current, own ? 'error.' + code : 'media.publish_failed');
    return false;
  }

  /** Sources whose media section the server rejected in its answer (port 0) stop. */
  function dropRejectedSources(current) {
    for (const source of SOURCES) {
      const transceiver = current.transceivers[source];
      if (!transceiver || transceiver.mid === null || transceiver.currentDirection === null) {
        continue;
      }
      const direction = transceiver.currentDirection;
      if (isStopped(transceiver) || direction === 'inactive' || direction === 'recvonly') {
        removeSource(current, source, false);
        showNotice('media.rejected.' + source, null, 'warning');
      }
    }
  }

  function onPublishAnswer(message) {
    if (media.answerWaiter && typeof message.sdp === 'string') {
      media.answerWaiter.resolve(message.sdp);
    }
  }

  /** Handles an error that concerns media; true when it did. */
  function onMediaError(code) {
    if (code === 'stale_answer') {
      // The server sends a newer offer; nothing to tell the person.
      return true;
    }
    if (media.answerWaiter && PUBLISH_ERRORS.has(code)) {
      media.answerWaiter.reject(code);
      return true;
    }
    return false;
  }

  function isSending(current, source) {
    const transceiver = current.transceivers[source];
    const track = current.tracks[source];
    return Boolean(track && track.readyState === 'live' && transceiver && !isStopped(transceiver) &&
      (transceiver.currentDirection === 'sendonly' || transceiver.currentDirection === 'sendrecv'));
  }

  /** Tells the room what this participant sends, whenever that changes. */
  function sendMediaState() {
    const current = media;
    if (!current.active || !current.serverHasMedia || session.phase !== 'meeting') {
      return;
    }
    const state = {
      microphone: isSending(current, 'microphone') && !prefs.micMuted,
      camera: isSending(current, 'camera'),
      screen: isSending(current, 'screen'),
    };
    const text = JSON.stringify(state);
    if (text !== current.lastState && send(Object.assign({ type: 'media_state' }, state))) {
      current.lastState = text;
    }
  }

  // --- Subscribe connection --------------------------------------------------------------------

  function ensureSubscribeConnection(current) {
    if (!current.subscribe) {
      const pc = new RTCPeerConnection(PEER_CONNECTION_CONFIG);
      pc.addEventListener('connectionstatechange', () => {
        if (pc.connectionState === 'failed' && media === current && current.active) {
          mediaNoticeOnce(current, 'media.connection_failed');
        }
      });
      current.subscribe = pc;
    }
    return current.subscribe;
  }

  function toRemoteTracks(list) {
    if (!Array.isArray(list)) {
      return [];
    }
    return list.filter((entry) => entry && typeof entry.mid === 'string' && Number.isSafeInteger(entry.participant) &&
      SOURCES.includes(entry.source) && REMOTE_KINDS.has(entry.kind))
      .map((entry) => ({ mid: entry.mid, participant: entry.participant, source: entry.source, kind: entry.kind }));
  }

  /**
   * The appliance restarted its media plane: both connections ended with it. Whatever is live
   * is published again on a new connection; the next subscribe offer gets a new one too.
   */
  function onMediaReset() {
    const current = media;
    if (!current.active) {
      return;
    }
    if (current.subscribe) {
      current.subscribe.close();
      current.subscribe = null;
    }
    if (replacePublishConnection(current)) {
      negotiatePublish(current);
    }
  }

  function onSubscribeOffer(message) {
    const current = media;
    if (!current.active || !peerConnectionsAvailable() || typeof message.sdp !== 'string' ||
        !Number.isSafeInteger(message.version)) {
      return;
    }
    const tracks = toRemoteTracks(message.tracks);
    // One offer at a time, in the order they arrived.
    current.subscribeChain = current.subscribeChain
      .then(() => answerSubscribeOffer(current, message.version, message.sdp, tracks))
      .catch(() => {
        if (media === current && current.active) {
          mediaNoticeOnce(current, 'media.receive_failed');
        }
      });
  }

  async function answerSubscribeOffer(current, version, sdp, tracks) {
    if (media !== current || !current.active) {
      return;
    }
    let pc = ensureSubscribeConnection(current);
    try {
      await acceptOffer(pc, sdp);
    } catch (error) {
      if (!pc.currentRemoteDescription || media !== current || !current.active) {
        throw error;
      }
      // A browser that refused an offer keeps refusing on that connection. Answer on a new one;
      // the server takes its new ICE and DTLS credentials as a restart.
      pc.close();
      current.subscribe = null;
      pc = ensureSubscribeConnection(current);
      await acceptOffer(pc, sdp);
    }
    if (media !== current || !current.active) {
      return;
    }
    send({ type: 'subscribe_answer', version, sdp: pc.localDescription.sdp });
    applyRemoteTracks(current, tracks);
  }

  async function acceptOffer(pc, sdp) {
    try {
      // An offer in which every section has ended may come without a BUNDLE group, which a
      // browser using max-bundle refuses. With the ended sections named in a group it is accepted.
      await pc.setRemoteDescription({ type: 'offer', sdp: withBundleGroup(sdp) });
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (error) {
      if (pc.signalingState === 'have-remote-offer') {
        try {
          await pc.setRemoteDescription({ type: 'rollback' });
        } catch (_) {
          // The next offer replaces it.
        }
      }
      throw error;
    }
  }

  /** `sdp`, or, if it has no BUNDLE group with members, `sdp` with a group of all its sections. */
  function withBundleGroup(sdp) {
    if (/^a=group:BUNDLE [^\r\n]/m.test(sdp)) {
      return sdp;
    }
    const mids = Array.from(sdp.matchAll(/^a=mid:(\S+)/gm), (match) => match[1]);
    const firstMedia = sdp.search(/^m=/m);
    if (mids.length === 0 || firstMedia < 0) {
      return sdp;
    }
    const session = sdp.slice(0, firstMedia).replace(/^a=group:BUNDLE\s*\r?\n/m, '');
    return session + 'a=group:BUNDLE ' + mids.join(' ') + '\r\n' + sdp.slice(firstMedia);
  }

  /** Makes the received tracks those of `list`: new ones appear, missing ones have ended. */
  function applyRemoteTracks(current, list) {
    const byMid = new Map();
    for (const transceiver of current.subscribe.getTransceivers()) {
      if (transceiver.mid !== null) {
        byMid.set(transceiver.mid, transceiver);
      }
    }
    const next = new Map();
    for (const entry of list) {
      const transceiver = byMid.get(entry.mid);
      if (transceiver && !isStopped(transceiver) && transceiver.receiver.track &&
          transceiver.receiver.track.kind === entry.kind) {
        next.set(entry.mid, Object.assign({}, entry, { transceiver, track: transceiver.receiver.track }));
      }
    }
    for (const [mid, entry] of current.remote) {
      if (!next.has(mid) && !isStopped(entry.transceiver)) {
        // The offer ended it already (port 0); stopping is for a server that did not.
        try {
          entry.transceiver.stop();
        } catch (_) {
          // Stopped meanwhile.
        }
      }
    }
    current.remote = next;
    syncRemoteAudio(current);
    renderStage();
  }

  function syncRemoteAudio(current) {
    for (const [mid, audio] of current.audioElements) {
      const entry = current.remote.get(mid);
      if (!entry || !audio.srcObject || audio.srcObject.getAudioTracks()[0] !== entry.track) {
        audio.srcObject = null;
        audio.remove();
        current.audioElements.delete(mid);
        detachMeter('mid:' + mid);
      }
    }
    for (const entry of current.remote.values()) {
      if (entry.kind !== 'audio' || current.audioElements.has(entry.mid)) {
        continue;
      }
      const audio = document.createElement('audio');
      audio.autoplay = true;
      audio.dataset.participant = String(entry.participant);
      audio.dataset.mid = entry.mid;
      audio.srcObject = new MediaStream([entry.track]);
      ui.remoteAudio.append(audio);
      current.audioElements.set(entry.mid, audio);
      play(audio);
      attachMeter('mid:' + entry.mid, entry.participant, entry.track);
    }
  }

  function play(mediaElement) {
    const result = mediaElement.play();
    if (result && typeof result.catch === 'function') {
      result.catch((error) => {
        if (error && error.name === 'NotAllowedError') {
          waitForGesture();
        }
      });
    }
  }

  /** The browser refused to play sound before an interaction: resume on the next one. */
  function waitForGesture() {
    if (playbackBlocked) {
      return;
    }
    playbackBlocked = true;
    showNotice('media.audio_blocked', null, 'warning');
    const resume = () => {
      playbackBlocked = false;
      document.removeEventListener('pointerdown', resume, true);
      document.removeEventListener('keydown', resume, true);
      for (const mediaElement of document.querySelectorAll('#remote-audio audio, #video-grid video')) {
        if (mediaElement.srcObject) {
          play(mediaElement);
        }
      }
      if (audioContext && audioContext.state === 'suspended') {
        audioContext.resume().catch(() => {});
      }
    };
    document.addEventListener('pointerdown', resume, true);
    document.addEventListener('keydown', resume, true);
  }

  // --- Speaking indicator ----------------------------------------------------------------------

  function ensureAudioContext() {
    if (audioContext) {
      return audioContext;
    }
    const Context = window.AudioContext || window.webkitAudioContext;
    if (typeof Context !== 'function') {
      return null;
    }
    try {
      audioContext = new Context();
    } catch (_) {
      return null;
    }
    if (audioContext.state === 'suspended') {
      audioContext.resume().catch(() => {});
    }
    return audioContext;
  }

  function attachMeter(key, participant, track) {
    detachMeter(key);
    const context = ensureAudioContext();
    if (!context) {
      return;
    }
    try {
      const source = context.createMediaStreamSource(new MediaStream([track]));
      const analyser = context.createAnalyser();
      analyser.fftSize = 512;
      // Not connected to the destination: the meter only listens.
      source.connect(analyser);
      meters.set(key, { participant, track, source, analyser, buffer: new Float32Array(analyser.fftSize), until: 0 });
    } catch (_) {
      return;
    }
    if (meterTimer === null) {
      meterTimer = window.setInterval(measureLevels, LEVEL_INTERVAL_MS);
    }
  }

  function detachMeter(key) {
    const meter = meters.get(key);
    if (!meter) {
      return;
    }
    meters.delete(key);
    try {
      meter.source.disconnect();
    } catch (_) {
      // Already disconnected.
    }
    if (meters.size === 0 && meterTimer !== null) {
      window.clearInterval(meterTimer);
      meterTimer = null;
      speaking.clear();
      renderSpeaking();
    }
  }

  function measureLevels() {
    const now = window.performance.now();
    const next = new Set();
    for (const meter of meters.values()) {
      if (meter.track.readyState !== 'live' || !meter.track.enabled) {
        continue;
      }
      meter.analyser.getFloatTimeDomainData(meter.buffer);
      let sum = 0;
      for (const sample of meter.buffer) {
        sum += sample * sample;
      }
      if (Math.sqrt(sum / meter.buffer.length) > SPEAKING_RMS) {
        meter.until = now + SPEAKING_HOLD_MS;
      }
      if (meter.until > now) {
        next.add(meter.participant);
      }
    }
    if (next.size === speaking.size && Array.from(next).every((id) => speaking.has(id))) {
      return;
    }
    speaking.clear();
    for (const id of next) {
      speaking.add(id);
    }
    renderSpeaking();
  }

  function renderSpeaking() {
    for (const tile of ui.videoGrid.querySelectorAll('.tile[data-source="camera"]')) {
      tile.dataset.speaking = String(speaking.has(Number(tile.dataset.participant)));
    }
  }

  // --- Video grid ------------------------------------------------------------------------------

  /** The tiles to show: screen shares first, then one per participant, yourself first. */
  function tileSpecs() {
    if (screen !== 'meeting' || (session.phase !== 'meeting' && session.phase !== 'leaving')) {
      return [];
    }
    const received = new Map();
    for (const entry of media.remote.values()) {
      if (entry.kind === 'video') {
        received.set(entry.participant + ':' + entry.source, entry.track);
      }
    }
    const people = sortedParticipants();
    const specs = [];
    for (const participant of people) {
      const self = participant.id === session.you;
      const track = self ? media.tracks.screen : received.get(participant.id + ':screen');
      if (track) {
        specs.push({ key: participant.id + ':screen', participant, source: 'screen', self, track });
      }
    }
    for (const participant of people) {
      const self = participant.id === session.you;
      const track = self ? media.tracks.camera : received.get(participant.id + ':camera');
      specs.push({ key: participant.id + ':camera', participant, source: 'camera', self, track: track || null });
    }
    return specs;
  }

  function stateIcon(className, template, key) {
    const mark = element('span', 'tile-state ' + className);
    mark.append(template.content.cloneNode(true));
    const label = element('span', 'visually-hidden');
    bindText(label, key);
    mark.append(label);
    return mark;
  }

  function createTile(spec) {
    const tile = element('li', 'tile' + (spec.source === 'screen' ? ' tile-screen' : ''));
    tile.dataset.key = spec.key;
    tile.dataset.participant = String(spec.participant.id);
    tile.dataset.source = spec.source;
    if (spec.self) {
      tile.dataset.self = 'true';
    }
    const video = element('video', 'tile-video');
    // Sound plays through the <audio> elements; a muted video may start without a gesture.
    video.muted = true;
    video.defaultMuted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.hidden = true;
    const avatar = element('div', 'tile-avatar');
    avatar.setAttribute('aria-hidden', 'true');
    avatar.append(element('span', 'tile-initial'));
    const caption = element('p', 'tile-caption');
    const name = element('span', 'tile-name');
    name.setAttribute('dir', 'auto');
    const you = element('span', 'tile-you');
    caption.append(
      name,
      you,
      stateIcon('tile-speaking', ui.speakingIconTemplate, 'tile.speaking'),
      stateIcon('tile-mic-off', ui.micOffIconTemplate, 'tile.mic_off'),
      stateIcon('tile-camera-off', ui.cameraOffIconTemplate, 'tile.camera_off'),
    );
    const note = element('p', 'tile-note');
    bindText(note, 'tile.video_hidden');
    tile.append(video, avatar, caption, note);
    return tile;
  }

  function initialOf(name) {
    const first = Array.from(name.trim())[0];
    return first ? first.toUpperCase() : '?';
  }

  function attachVideo(video, track) {
    const shown = video.srcObject ? video.srcObject.getVideoTracks()[0] || null : null;
    if (shown !== track) {
      video.srcObject = track ? new MediaStream([track]) : null;
    }
    video.hidden = !track;
    if (track && video.paused) {
      play(video);
    }
  }

  function updateTile(tile, spec) {
    const participant = spec.participant;
    const name = tile.querySelector('.tile-name');
    if (spec.source === 'screen') {
      bindText(name, spec.self ? 'tile.screen.you' : 'tile.screen', { name: participant.name });
    } else {
      name.removeAttribute('data-i18n');
      name.removeAttribute('data-i18n-args');
      name.textContent = participant.name;
    }
    const you = tile.querySelector('.tile-you');
    you.hidden = !(spec.self && spec.source === 'camera');
    if (!you.hidden) {
      bindText(you, 'tile.you');
    }
    tile.querySelector('.tile-initial').textContent = initialOf(participant.name);
    const microphone = spec.self ? Boolean(media.tracks.microphone) && !prefs.micMuted : participant.media.microphone;
    const camera = spec.source === 'screen' || (spec.self ? Boolean(spec.track) : participant.media.camera && Boolean(spec.track));
    // Audio only: received video is not shown (your own preview stays).
    const suppressed = !spec.self && prefs.audioOnly && Boolean(spec.track);
    const show = Boolean(spec.track) && camera && !suppressed;
    tile.dataset.microphone = microphone ? 'on' : 'off';
    tile.dataset.camera = camera ? 'on' : 'off';
    tile.dataset.video = show ? 'shown' : 'hidden';
    tile.dataset.speaking = String(spec.source === 'camera' && speaking.has(participant.id));
    tile.querySelector('.tile-note').hidden = !suppressed;
    attachVideo(tile.querySelector('video'), show ? spec.track : null);
  }

  function releaseTile(tile) {
    const video = tile.querySelector('video');
    if (video) {
      video.srcObject = null;
    }
  }

  function renderStage() {
    const specs = tileSpecs();
    const existing = new Map(Array.from(ui.videoGrid.children, (tile) => [tile.dataset.key, tile]));
    const ordered = specs.map((spec) => {
      const tile = existing.get(spec.key) || createTile(spec);
      existing.delete(spec.key);
      updateTile(tile, spec);
      return tile;
    });
    for (const tile of existing.values()) {
      releaseTile(tile);
      tile.remove();
    }
    // Moves only what is out of place, so that playing videos are left alone.
    ordered.forEach((tile, index) => {
      if (ui.videoGrid.children[index] !== tile) {
        ui.videoGrid.insertBefore(tile, ui.videoGrid.children[index] || null);
      }
    });
    ui.videoGrid.hidden = ordered.length === 0;
    ui.videoGrid.dataset.count = String(Math.min(ordered.length, 9));
    ui.stagePlaceholder.hidden = ordered.length > 0;
  }

  // --- Controls --------------------------------------------------------------------------------

  function renderMediaControls() {
    const current = media;
    const microphoneOn = Boolean(current.tracks.microphone) && !prefs.micMuted;
    ui.micToggle.setAttribute('aria-pressed', String(!microphoneOn));
    ui.cameraToggle.setAttribute('aria-pressed', String(!current.tracks.camera));
    ui.cameraToggle.disabled = prefs.audioOnly;
    ui.screenToggle.setAttribute('aria-pressed', String(Boolean(current.tracks.screen)));
    ui.screenToggle.hidden = !canShareScreen();
    ui.audioOnlyToggle.setAttribute('aria-pressed', String(prefs.audioOnly));
    ui.micToggle.setAttribute('aria-busy', String(current.busy.microphone));
    ui.cameraToggle.setAttribute('aria-busy', String(current.busy.camera));
    ui.screenToggle.setAttribute('aria-busy', String(current.busy.screen));
  }

  function renderMedia() {
    renderMediaControls();
    renderStage();
  }

  /** Starts the media of a meeting that was just joined. Never throws. */
  async function startMedia() {
    stopMedia();
    const current = newMedia();
    current.active = true;
    media = current;
    renderMedia();
    if (!mediaDevicesAvailable() || !peerConnectionsAvailable()) {
      showNotice('media.unsupported', null, 'warning');
      return;
    }
    const wantCamera = prefs.cameraWanted && !prefs.audioOnly;
    current.busy.microphone = true;
    current.busy.camera = wantCamera;
    renderMediaControls();
    const got = await acquire(true, wantCamera, false);
    current.busy.microphone = false;
    current.busy.camera = false;
    if (media !== current || !current.active) {
      stopTrack(got.microphone);
      stopTrack(got.camera);
      return;
    }
    try {
      if (got.microphone) {
        addSource(current, 'microphone', got.microphone);
      }
      if (got.camera) {
        addSource(current, 'camera', got.camera);
      }
    } catch (_) {
      mediaNoticeOnce(current, 'media.publish_failed');
    }
    renderMedia();
    refreshDevices();
    negotiatePublish(current);
  }

  /** Ends all media of the meeting: devices off, connections closed, tiles gone. */
  function stopMedia() {
    const current = media;
    current.active = false;
    if (current.answerWaiter) {
      current.answerWaiter.reject('closed');
    }
    for (const source of SOURCES) {
      stopTrack(current.tracks[source]);
    }
    for (const pc of [current.publish, current.subscribe]) {
      if (pc) {
        try {
          pc.close();
        } catch (_) {
          // Closed already.
        }
      }
    }
    for (const audio of current.audioElements.values()) {
      audio.srcObject = null;
      audio.remove();
    }
    for (const key of Array.from(meters.keys())) {
      detachMeter(key);
    }
    speaking.clear();
    for (const tile of Array.from(ui.videoGrid.children)) {
      releaseTile(tile);
      tile.remove();
    }
    ui.videoGrid.hidden = true;
    ui.stagePlaceholder.hidden = false;
    media = newMedia();
    renderMediaControls();
  }

  async function enableSource(current, source) {
    if (current.busy[source] || current.tracks[source]) {
      return null;
    }
    current.busy[source] = true;
    renderMediaControls();
    const got = await acquire(source === 'microphone', source === 'camera', false);
    current.busy[source] = false;
    const track = got[source];
    if (media !== current || !current.active || current.tracks[source]) {
      stopTrack(track);
      renderMediaControls();
      return null;
    }
    if (track) {
      addSource(current, source, track);
      negotiatePublish(current);
      refreshDevices();
    }
    renderMedia();
    return track;
  }

  async function toggleMicrophone() {
    const current = media;
    if (!current.active || current.busy.microphone) {
      return;
    }
    const track = current.tracks.microphone;
    if (!track) {
      const wasMuted = prefs.micMuted;
      prefs.micMuted = false;
      if (await enableSource(current, 'microphone')) {
        announce('announce.unmuted');
      } else {
        prefs.micMuted = wasMuted;
        renderMediaControls();
      }
      return;
    }
    prefs.micMuted = !prefs.micMuted;
    track.enabled = !prefs.micMuted;
    announce(prefs.micMuted ? 'announce.muted' : 'announce.unmuted');
    renderMedia();
    sendMediaState();
  }

  async function toggleCamera() {
    const current = media;
    if (!current.active || current.busy.camera || prefs.audioOnly) {
      return;
    }
    if (current.tracks.camera) {
      prefs.cameraWanted = false;
      removeSource(current, 'camera');
      announce('announce.camera.off');
      return;
    }
    if (await enableSource(current, 'camera')) {
      prefs.cameraWanted = true;
      announce('announce.camera.on');
    }
  }

  async function toggleScreenShare() {
    const current = media;
    if (!current.active || current.busy.screen) {
      return;
    }
    if (current.tracks.screen) {
      removeSource(current, 'screen');
      announce('announce.screen.off');
      return;
    }
    if (!canShareScreen() || !peerConnectionsAvailable()) {
      showNotice('media.screen.failed', null, 'warning');
      return;
    }
    current.busy.screen = true;
    renderMediaControls();
    let stream = null;
    try {
      // Called straight from the click: browsers demand a user gesture for this.
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    } catch (error) {
      showNotice(errorName(error) === 'NotAllowedError' ? 'media.screen.cancelled' : 'media.screen.failed', null,
        errorName(error) === 'NotAllowedError' ? 'info' : 'warning');
    }
    current.busy.screen = false;
    const track = stream ? stream.getVideoTracks()[0] || null : null;
    if (stream) {
      for (const other of stream.getTracks()) {
        if (other !== track) {
          other.stop();
        }
      }
    }
    if (media !== current || !current.active || current.tracks.screen) {
      stopTrack(track);
      renderMediaControls();
      return;
    }
    if (track) {
      addSource(current, 'screen', track);
      negotiatePublish(current);
      announce('announce.screen.on');
    }
    renderMedia();
  }

  function setAudioOnly(on) {
    const current = media;
    prefs.audioOnly = on;
    if (on && current.tracks.camera) {
      removeSource(current, 'camera');
    } else if (!on && current.active && prefs.cameraWanted && !current.tracks.camera) {
      enableSource(current, 'camera');
    }
    announce(on ? 'announce.audio_only.on' : 'announce.audio_only.off');
    renderMedia();
  }

  async function switchDevice(source, deviceId) {
    prefs.deviceId[source] = deviceId || null;
    const current = media;
    const old = current.tracks[source];
    if (!current.active || !old || current.busy[source]) {
      // Used the next time the device is turned on.
      return;
    }
    current.busy[source] = true;
    renderMediaControls();
    const got = await acquire(source === 'microphone', source === 'camera', true);
    current.busy[source] = false;
    const track = got[source];
    if (media !== current || !current.active || current.tracks[source] !== old || !track) {
      stopTrack(track);
      renderMediaControls();
      refreshDevices();
      return;
    }
    if (source === 'microphone') {
      track.enabled = !prefs.micMuted;
    }
    if ('contentHint' in track) {
      track.contentHint = old.contentHint;
    }
    const transceiver = current.transceivers[source];
    try {
      if (transceiver && !isStopped(transceiver)) {
        await transceiver.sender.replaceTrack(track);
      }
    } catch (_) {
      track.stop();
      showNotice('media.failed.' + source, null, 'warning');
      renderMediaControls();
      return;
    }
    if (media !== current || current.tracks[source] !== old) {
      track.stop();
      return;
    }
    current.tracks[source] = track;
    track.addEventListener('ended', () => onLocalTrackEnded(current, source, track));
    old.stop();
    if (source === 'microphone') {
      attachMeter('local', session.you, track);
    }
    renderMedia();
    refreshDevices();
  }

  /**
   * A read-only, non-enumerable handle for the browser tests (tests/browser/media.test.js): they
   * read the peer connections' getStats() and the list of received tracks. It gives nothing that
   * the page's own scripts could not reach anyway.
   */
  function exposeDebugHandle() {
    const handle = Object.freeze({
      get publish() {
        return media.publish;
      },
      get subscribe() {
        return media.subscribe;
      },
      get tracks() {
        return Array.from(media.remote.values(), (entry) => ({
          mid: entry.mid, participant: entry.participant, source: entry.source, kind: entry.kind,
        }));
      },
    });
    Object.defineProperty(window, 'kammerDebug', { value: handle, enumerable: false, writable: false, configurable: false });
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
    ui.micToggle.addEventListener('click', toggleMicrophone);
    ui.cameraToggle.addEventListener('click', toggleCamera);
    ui.screenToggle.addEventListener('click', toggleScreenShare);
    ui.audioOnlyToggle.addEventListener('click', () => setAudioOnly(!prefs.audioOnly));
    ui.devicesToggle.addEventListener('click', () => {
      togglePanel('devices', ui.devicesPanel);
      if (panelOpen.devices) {
        refreshDevices();
      }
    });
    ui.cameraSelect.addEventListener('change', () => switchDevice('camera', ui.cameraSelect.value));
    ui.microphoneSelect.addEventListener('change', () => switchDevice('microphone', ui.microphoneSelect.value));
    if (navigator.mediaDevices && typeof navigator.mediaDevices.addEventListener === 'function') {
      navigator.mediaDevices.addEventListener('devicechange', () => refreshDevices());
    }
    window.addEventListener('pagehide', () => {
      stopMedia();
      dropConnection();
    });
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
    exposeDebugHandle();
    renderMediaControls();
    ui.joinSubmit.disabled = false;
    loadServerNotice();
  }

  start();
}());
