// System test: the real `kammer` binary driven by headless Chromium through the embedded web client.
//
//   KAMMER_BIN=/path/to/kammer npm test
//
// Needs the Debian package `chromium`. Nothing here is skipped: a missing binary or browser fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

import { Kammer, chromiumExecutable, kammerBinary, launchChromium, roomName, step as stepWith } from './support.js';

const require = createRequire(import.meta.url);
const AXE_PATH = require.resolve('axe-core/axe.min.js');
const PROTOCOL_DOC = new URL('../../docs/protocol.md', import.meta.url);

const STEP_TIMEOUT_MS = 10_000;
const SCREENSHOT_JOIN = '/tmp/kammer-join.png';
const SCREENSHOT_MEETING = '/tmp/kammer-meeting.png';

const kammer = new Kammer();
let baseUrl = null;
let browser = null;

before(async () => {
  // Both checks first, so that a missing binary or browser fails before anything starts.
  kammerBinary();
  chromiumExecutable();
  baseUrl = await kammer.start();
  browser = await launchChromium();
}, { timeout: 100_000 });

after(async () => {
  if (browser) {
    await browser.close().catch(() => {});
  }
  await kammer.stop();
});

// ------------------------------------------------------------------------------------------------
// Helpers

/** A fresh browser profile; `locale` picks the client's language. */
async function newPage(locale, options = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale, ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push(`console error: ${message.text()}`);
    }
  });
  return { context, page, problems };
}

/** Awaits `promise`, prefixing a failure with what the test was waiting for. */
function step(what, promise) {
  return stepWith(kammer, what, promise);
}

function visible(page, selector, what) {
  return step(what, page.locator(selector).waitFor({ state: 'visible' }));
}

async function joinRoom(page, room, name) {
  if (room !== null) {
    await page.fill('#join-room', room);
  }
  await page.fill('#join-name', name);
  await page.click('#join-submit');
}

/** The participant id shown for `name` in the page's participant list. */
async function participantId(page, name) {
  const entries = await page.$$eval('#participants li[data-participant-id]', (items) =>
    items.map((item) => [item.dataset.participantId, item.querySelector('.person-name').textContent]));
  const entry = entries.find(([, shown]) => shown === name);
  assert.ok(entry, `${name} is not in the participant list: ${JSON.stringify(entries)}`);
  return entry[0];
}

function waitForNames(page, names, what) {
  return step(what, page.waitForFunction((expected) => {
    const shown = Array.from(document.querySelectorAll('#participants li[data-participant-id] .person-name'))
      .map((node) => node.textContent);
    return expected.every((name) => shown.includes(name)) && shown.length === expected.length;
  }, names));
}

function waitForChat(page, text, what) {
  return step(what, page.waitForFunction((wanted) =>
    Array.from(document.querySelectorAll('#chat-log .chat-message')).some((node) => node.textContent.includes(wanted)),
  text));
}

async function runAxe(page, label) {
  await page.addScriptTag({ path: AXE_PATH });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return result.violations.map((violation) => ({
      id: violation.id,
      impact: violation.impact,
      help: violation.help,
      targets: violation.nodes.map((node) => node.target.join(' ')).slice(0, 5),
    }));
  });
  const blocking = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = violations.filter((v) => !blocking.includes(v));
  if (minor.length > 0) {
    console.log(`axe (${label}), not blocking:\n${JSON.stringify(minor, null, 2)}`);
  }
  assert.deepEqual(blocking, [], `axe found serious or critical violations on ${label}:\n${JSON.stringify(blocking, null, 2)}`);
}

// ------------------------------------------------------------------------------------------------
// Tests

test('join, lobby, admit, chat, hand, remove', { timeout: 60_000 }, async () => {
  const room = roomName();
  // Alice's browser speaks English, Bob's German: both translations get exercised.
  const alice = await newPage('en-US');
  const bob = await newPage('de-DE');
  try {
    // Alice creates the room and becomes its moderator.
    await alice.page.goto(baseUrl);
    assert.equal(await alice.page.getAttribute('html', 'lang'), 'en');
    await joinRoom(alice.page, room, 'Alice');
    await visible(alice.page, '#meeting-screen', 'Alice reaches the meeting screen');
    await visible(alice.page, '#moderator-panel', 'Alice sees the moderator panel');
    await visible(alice.page, '#footer-status', 'the footer is visible');
    assert.match(await alice.page.textContent('#footer-status'), /Kammer[\s\S]*Protocol v1/);

    // Bob follows an invitation link; the room is filled in for him. He waits in the lobby.
    await bob.page.goto(`${baseUrl}?room=${room}`);
    assert.equal(await bob.page.getAttribute('html', 'lang'), 'de');
    assert.equal(await bob.page.inputValue('#join-room'), room, 'room ID is taken from ?room=');
    await joinRoom(bob.page, null, 'Bob');
    await visible(bob.page, '#lobby-screen', 'Bob reaches the lobby screen');

    // Alice admits him.
    const admit = alice.page.locator('#lobby-list button[data-action=admit]');
    await step('Bob appears in Alice\'s lobby list', alice.page.locator('#lobby-list li', { hasText: 'Bob' }).waitFor());
    await admit.click();
    await visible(bob.page, '#meeting-screen', 'Bob reaches the meeting screen after admission');
    await waitForNames(alice.page, ['Alice', 'Bob'], 'Alice\'s participant list shows Alice and Bob');
    await waitForNames(bob.page, ['Alice', 'Bob'], 'Bob\'s participant list shows Alice and Bob');
    await step('the lobby list empties', alice.page.locator('#lobby-list li').waitFor({ state: 'detached' }));

    // Chat: once with the button, once with the Enter key.
    const first = `Guten Morgen <b>${randomBytes(3).toString('hex')}</b>`;
    const second = `Zweite Nachricht ${randomBytes(3).toString('hex')}`;
    await bob.page.fill('#chat-input', first);
    await bob.page.click('#chat-send');
    await waitForChat(alice.page, first, 'Bob\'s first chat message reaches Alice');
    await bob.page.fill('#chat-input', second);
    await bob.page.press('#chat-input', 'Enter');
    await waitForChat(alice.page, second, 'Bob\'s second chat message (Enter key) reaches Alice');
    assert.equal(await bob.page.inputValue('#chat-input'), '', 'the chat input is cleared after sending');
    // Chat text is shown as text, never parsed as markup.
    assert.equal(await alice.page.locator('#chat-log b').count(), 0, 'chat text must not become markup');

    // Alice raises her hand; Bob sees it.
    const aliceId = await participantId(bob.page, 'Alice');
    await alice.page.click('#hand-toggle');
    await step('Alice\'s hand button shows pressed', alice.page.locator('#hand-toggle[aria-pressed=true]').waitFor());
    await step('Bob sees Alice\'s raised hand',
      bob.page.locator(`#participants li[data-participant-id="${aliceId}"][data-hand="true"]`).waitFor());

    // Moderator actions: lock the room, ask Bob to mute.
    await alice.page.click('#lock-toggle');
    await step('the lock switch turns on', alice.page.locator('#lock-toggle[aria-checked=true]').waitFor());
    const bobId = await participantId(alice.page, 'Bob');
    await alice.page.click(`#participants button[data-action=ask_mute][data-participant-id="${bobId}"]`);
    await step('Bob sees the mute request', bob.page.locator('#notice', { hasText: 'Mikrofon' }).waitFor());

    // Alice removes Bob, confirming in the dialog.
    await alice.page.click(`#participants button[data-action=remove][data-participant-id="${bobId}"]`);
    await visible(alice.page, '#confirm-dialog', 'the confirmation dialog opens');
    await alice.page.click('#confirm-ok');
    await visible(bob.page, '#end-screen', 'Bob sees the end screen after removal');
    assert.equal((await bob.page.textContent('#end-title')).trim(), 'Sie wurden entfernt');
    await visible(bob.page, '#end-back', 'Bob has a way back to the join page');
    await waitForNames(alice.page, ['Alice'], 'Bob disappears from Alice\'s participant list');

    assert.deepEqual(alice.problems, [], 'Alice\'s page logged errors');
    assert.deepEqual(bob.problems, [], 'Bob\'s page logged errors');
  } finally {
    await alice.context.close();
    await bob.context.close();
  }
});

test('accessibility: join page and moderator meeting screen (axe-core)', { timeout: 60_000 }, async () => {
  // axe-core is injected with page.addScriptTag({path}), which inserts an inline <script>. The
  // server's CSP (script-src 'self') blocks that, so these contexts, and only these, bypass the
  // CSP. The other tests run under the real CSP.
  const options = { bypassCSP: true, viewport: { width: 1280, height: 1200 } };
  const room = roomName();
  const moderator = await newPage('de-DE', options);
  const guest = await newPage('de-DE', options);
  const waiting = await newPage('en-US', options);
  try {
    await moderator.page.goto(baseUrl);
    await runAxe(moderator.page, 'the join page');
    await moderator.page.screenshot({ path: SCREENSHOT_JOIN, fullPage: true });

    await joinRoom(moderator.page, room, 'Moderatorin Weber');
    await visible(moderator.page, '#meeting-screen', 'the moderator reaches the meeting screen');

    await guest.page.goto(baseUrl);
    await joinRoom(guest.page, room, 'Gast Schmidt');
    await visible(guest.page, '#lobby-screen', 'the guest waits in the lobby');
    await runAxe(guest.page, 'the lobby screen');
    await moderator.page.locator('#lobby-list button[data-action=admit]').click();
    await visible(guest.page, '#meeting-screen', 'the guest is admitted');
    await guest.page.fill('#chat-input', 'Guten Tag zusammen.');
    await guest.page.press('#chat-input', 'Enter');
    await waitForChat(moderator.page, 'Guten Tag zusammen.', 'the guest\'s chat reaches the moderator');
    await guest.page.click('#hand-toggle');

    await waiting.page.goto(baseUrl);
    await joinRoom(waiting.page, room, 'Dana Example');
    await visible(waiting.page, '#lobby-screen', 'a third person waits in the lobby');
    await step('the moderator sees the waiting person',
      moderator.page.locator('#lobby-list li', { hasText: 'Dana Example' }).waitFor());
    await step('the moderator sees the raised hand',
      moderator.page.locator('#participants li[data-hand="true"]').waitFor());

    await runAxe(moderator.page, 'the moderator\'s meeting screen');
    await moderator.page.screenshot({ path: SCREENSHOT_MEETING, fullPage: true });

    // The remove confirmation is a modal dialog and must pass too.
    await moderator.page.locator('#participants button[data-action=remove]').click();
    await visible(moderator.page, '#confirm-dialog', 'the confirmation dialog opens');
    await runAxe(moderator.page, 'the remove confirmation dialog');
    await moderator.page.click('#confirm-cancel');

    for (const { problems } of [moderator, guest, waiting]) {
      assert.deepEqual(problems, [], 'a page logged errors');
    }
  } finally {
    await moderator.context.close();
    await guest.context.close();
    await waiting.context.close();
  }
});

test('no external URLs, strict CSP, every protocol error code translated', { timeout: 30_000 }, async () => {
  const { context, page, problems } = await newPage('en-US');
  try {
    const index = await context.request.get(baseUrl);
    assert.equal(index.status(), 200);
    const csp = index.headers()['content-security-policy'];
    assert.ok(csp, '/ must carry a Content-Security-Policy header');
    assert.ok(!csp.includes('unsafe-inline'), `CSP must not allow unsafe-inline: ${csp}`);
    assert.ok(!csp.includes('unsafe-eval'), `CSP must not allow unsafe-eval: ${csp}`);

    const files = {
      '/': 'text/html',
      '/assets/app.js': 'text/javascript',
      '/assets/i18n.js': 'text/javascript',
      '/assets/style.css': 'text/css',
    };
    for (const [path, type] of Object.entries(files)) {
      const response = await context.request.get(new URL(path, baseUrl).href);
      assert.equal(response.status(), 200, `${path} is served`);
      assert.ok(response.headers()['content-type'].startsWith(type), `${path} is served as ${type}`);
      const body = await response.text();
      const urls = body.match(/https?:\/\/[^\s'"`)<>]*/gi) || [];
      assert.deepEqual(urls, [], `${path} must reference no URL at all`);
    }

    // Every error code named in docs/protocol.md has a message in both languages, and every
    // string key the page uses exists in both languages.
    const doc = await readFile(PROTOCOL_DOC, 'utf8');
    const table = doc.slice(doc.indexOf('## Error codes'));
    const codes = Array.from(table.matchAll(/^\|\s*`([a-z_]+)`\s*\|/gm), (match) => match[1]);
    assert.ok(codes.length >= 20, `found only ${codes.length} error codes in docs/protocol.md`);
    await page.goto(baseUrl);
    const missing = await page.evaluate((errorCodes) => {
      const i18n = window.KammerI18n;
      const gaps = [];
      for (const lang of i18n.languages) {
        for (const code of errorCodes) {
          if (!i18n.has(lang, `error.${code}`)) gaps.push(`${lang}: error.${code}`);
        }
        for (const element of document.querySelectorAll('[data-i18n],[data-i18n-aria-label],[data-i18n-placeholder]')) {
          for (const key of [element.dataset.i18n, element.dataset.i18nAriaLabel, element.dataset.i18nPlaceholder]) {
            if (key && !i18n.has(lang, key)) gaps.push(`${lang}: ${key}`);
          }
        }
      }
      const de = new Set(i18n.keys('de'));
      const en = new Set(i18n.keys('en'));
      for (const key of de) if (!en.has(key)) gaps.push(`en lacks ${key}`);
      for (const key of en) if (!de.has(key)) gaps.push(`de lacks ${key}`);
      return gaps;
    }, codes);
    assert.deepEqual(missing, [], 'missing translations');

    // The language switch re-renders the page and sets <html lang>.
    await page.click('button[data-lang=de]');
    assert.equal(await page.getAttribute('html', 'lang'), 'de');
    assert.equal((await page.textContent('#join-submit')).trim(), 'Beitreten');
    await page.click('button[data-lang=en]');
    assert.equal((await page.textContent('#join-submit')).trim(), 'Join');
    assert.deepEqual(problems, [], 'the page logged errors');
  } finally {
    await context.close();
  }
});
