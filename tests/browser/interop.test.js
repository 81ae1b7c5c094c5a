// Interop test: video between two independent WebRTC stacks through the real `kammer` binary.
//
//   KAMMER_BIN=/path/to/kammer npm test
//
// aiortc (Python, tests/interop/aiortc_peer.py) creates a room as its moderator, publishes a
// synthetic camera and admits a headless Chromium participant that joins through the web client
// with a fake camera. The test asserts that each side decodes the other's video:
//   1. Chromium: inbound-rtp video `framesDecoded` on the web client's subscribe connection
//      (`window.kammerDebug.subscribe`) grows, for aiortc's camera tile.
//   2. aiortc: its `frames` progress lines count growing decoded frames from the browser
//      participant's camera.
//
// Needs the Debian package `chromium` and the Python venv tests/interop/.venv with
// tests/interop/requirements.txt installed (ci/install-deps creates both; KAMMER_INTEROP_PYTHON
// overrides the interpreter). Nothing here is skipped: a missing component fails.
// KAMMER_INTEROP_VERBOSE=1 adds aiortc's debug log and every SDP to /tmp/kammer-interop-aiortc.log.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const INTEROP_DIR = fileURLToPath(new URL('../interop/', import.meta.url));
const AIORTC_PEER = join(INTEROP_DIR, 'aiortc_peer.py');
const VENV_PYTHON = join(INTEROP_DIR, '.venv', 'bin', 'python');

const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless=new',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--allow-loopback-in-peer-connection',
];
const SERVER_START_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 20_000;
// Media on a shared 2-core machine: first frames can take a while when everything is busy.
const MEDIA_TIMEOUT_MS = 45_000;
// "Decodes" means: at least this many frames, then at least this many more.
const FRAMES_FIRST = 15;
const FRAMES_MORE = 30;
// What aiortc_peer.py sends (FRAME_WIDTH × FRAME_HEIGHT there).
const AIORTC_FRAME = { width: 320, height: 240 };
// Only used when the web client does not publish its camera on joining by itself: the camera
// button, pressed while the camera is off (like the microphone's mute button).
const CAMERA_OFF_BUTTON = '#camera-toggle[aria-pressed=true]';
const AIORTC_LOG = '/tmp/kammer-interop-aiortc.log';

let server = null;
let stateDir = null;
let baseUrl = null;
let caFile = null;
let browser = null;
const serverOutput = { stdout: '', stderr: '' };
const peers = new Set();

// ------------------------------------------------------------------------------------------------
// Components

function kammerBinary() {
  const bin = process.env.KAMMER_BIN;
  if (!bin) {
    throw new Error('KAMMER_BIN is not set. Run: KAMMER_BIN=/path/to/kammer npm test');
  }
  if (!existsSync(bin) || !statSync(bin).isFile()) {
    throw new Error(`KAMMER_BIN=${bin} does not exist or is not a file; build the kammer binary first.`);
  }
  return bin;
}

function chromiumExecutable() {
  const found = CHROMIUM_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `No Chromium at ${CHROMIUM_CANDIDATES.join(' or ')}: the Debian package "chromium" must be installed ` +
        '(apt-get install chromium).',
    );
  }
  return found;
}

/** The Python interpreter of the interop venv, checked to import aiortc and websockets. */
function interopPython() {
  const python = process.env.KAMMER_INTEROP_PYTHON || VENV_PYTHON;
  const hint = 'run ci/install-deps (it creates tests/interop/.venv from tests/interop/requirements.txt)';
  if (!existsSync(python)) {
    throw new Error(`No Python at ${python}: ${hint}.`);
  }
  const check = spawnSync(python, ['-c', 'import aiortc, av, websockets; print(aiortc.__version__)'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (check.status !== 0) {
    throw new Error(`${python} cannot import aiortc, av and websockets: ${hint}.\n${check.stderr}${check.error ?? ''}`);
  }
  return python;
}

function appendCapped(key, chunk) {
  serverOutput[key] = (serverOutput[key] + chunk).slice(-200_000);
}

function serverLog() {
  return `--- kammer stdout ---\n${serverOutput.stdout}\n--- kammer stderr ---\n${serverOutput.stderr}`;
}

/** Starts `kammer demo` on a free port; resolves with the URL and the CA file it prints. */
async function startServer() {
  const bin = kammerBinary();
  stateDir = await mkdtemp(join(tmpdir(), 'kammer-interop-'));
  server = spawn(bin, ['demo', '--port', '0', '--state-dir', stateDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.setEncoding('utf8');
  server.stderr.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`kammer printed no "URL:" and "CA file:" lines within ${SERVER_START_TIMEOUT_MS / 1000} s.\n${serverLog()}`));
    }, SERVER_START_TIMEOUT_MS);
    server.stdout.on('data', (chunk) => {
      appendCapped('stdout', chunk);
      const url = serverOutput.stdout.match(/URL:\s+(https:\/\/\S+)/);
      const ca = serverOutput.stdout.match(/CA file:\s+(\S+)\n/);
      if (url && ca) {
        clearTimeout(timer);
        resolve({ url: new URL('/', url[1]).href, ca: ca[1] });
      }
    });
    server.stderr.on('data', (chunk) => appendCapped('stderr', chunk));
    server.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${bin}: ${error.message}`));
    });
    server.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`kammer exited before it was ready (code ${code}, signal ${signal}).\n${serverLog()}`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
async function stopChild(child, graceMs = 5_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), graceMs));
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

let python = null;

before(async () => {
  // Every component first, so that a missing one fails before anything starts.
  kammerBinary();
  const executablePath = chromiumExecutable();
  python = interopPython();
  ({ url: baseUrl, ca: caFile } = await startServer());
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 30_000 });
}, { timeout: SERVER_START_TIMEOUT_MS + 100_000 });

after(async () => {
  for (const peer of peers) {
    await peer.stop();
  }
  if (browser) {
    await browser.close().catch(() => {});
  }
  await stopChild(server);
  if (stateDir) {
    await rm(stateDir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------------------------------------
// The aiortc peer

/**
 * Runs aiortc_peer.py and collects its JSON progress lines. `waitFor` resolves with the first
 * line that matches, and rejects as soon as the peer reports a fatal error or exits.
 */
class AiortcPeer {
  constructor(args) {
    this.events = [];
    this.output = '';
    this.stderr = '';
    this.exit = null;
    this.waiters = new Set();
    this.child = spawn(python, ['-u', AIORTC_PEER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stderr.setEncoding('utf8');
    let partial = '';
    this.child.stdout.on('data', (chunk) => {
      this.output = (this.output + chunk).slice(-200_000);
      partial += chunk;
      const lines = partial.split('\n');
      partial = lines.pop();
      for (const line of lines.filter((l) => l.trim())) {
        let event;
        try {
          event = JSON.parse(line);
        } catch {
          event = { event: 'unparsed', line };
        }
        this.events.push(event);
        this.notify();
      }
    });
    this.child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + chunk).slice(-20_000_000);
    });
    this.child.on('error', (error) => {
      this.exit = `could not start: ${error.message}`;
      this.notify();
    });
    this.child.on('exit', (code, signal) => {
      this.exit = `exited (code ${code}, signal ${signal})`;
      this.notify();
    });
    peers.add(this);
  }

  log() {
    // Early lines that explain a stall scroll out of the tail: repeat the last of each kind.
    const last = {};
    for (const e of this.events) {
      if (['feedback', 'published', 'subscribed', 'connection_state', 'error', 'fatal'].includes(e.event)) {
        last[e.pc ? `${e.event} ${e.pc}` : e.event] = e;
      }
    }
    return `--- aiortc, last event of each kind ---\n${Object.values(last).map((e) => JSON.stringify(e)).join('\n')}\n` +
      `--- aiortc stdout ---\n${this.output.slice(-6_000)}\n--- aiortc stderr ---\n${this.stderr.slice(-6_000)}`;
  }

  problem() {
    const fatal = this.events.find((e) => e.event === 'fatal');
    if (fatal) return `aiortc peer failed: ${fatal.message}`;
    if (this.exit) return `aiortc peer ${this.exit}`;
    return null;
  }

  notify() {
    for (const waiter of this.waiters) waiter();
  }

  waitFor(what, predicate, timeoutMs = STEP_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      let timer = null;
      const done = (settle, value) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle(value);
      };
      const fail = (why) => done(reject, new Error(`${what}: ${why}\n${this.log()}\n${serverLog().slice(-4_000)}`));
      const check = () => {
        const found = this.events.find(predicate);
        if (found) return done(resolve, found);
        const problem = this.problem();
        if (problem) fail(problem);
      };
      timer = setTimeout(() => fail(`not within ${timeoutMs / 1000} s`), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async stop() {
    await stopChild(this.child);
    peers.delete(this);
    await writeFile(AIORTC_LOG, `${this.output}\n--- stderr ---\n${this.stderr}`).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// Browser helpers

async function newPage(locale) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, locale });
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

async function step(what, promise, peer) {
  try {
    return await promise;
  } catch (error) {
    throw new Error(`${what}: ${error.message}\n${peer ? peer.log() : ''}\n${serverLog().slice(-4_000)}`);
  }
}

/** Calls `probe` every 500 ms until `ready(value)`; fails with the last value seen. */
async function pollUntil(what, probe, ready, timeoutMs, peer) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (ready(last)) return last;
    const problem = peer?.problem();
    if (problem) {
      throw new Error(`${what}: ${problem}; last seen ${JSON.stringify(last)}\n${peer.log()}\n${serverLog().slice(-4_000)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs / 1000} s; last seen ${JSON.stringify(last)}\n` +
        `${peer ? peer.log() : ''}\n${serverLog().slice(-4_000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Whether the web client's publish connection sends a live video track. */
function sendsVideo(page) {
  return page.evaluate(() => {
    const pc = window.kammerDebug && window.kammerDebug.publish;
    return Boolean(pc && pc.getSenders().some((s) => s.track && s.track.kind === 'video' && s.track.readyState === 'live'));
  });
}

/**
 * Makes sure the web client publishes its (fake) camera. The client is expected to do that on
 * joining; if it has not after a few seconds and its camera button says the camera is off,
 * press it once.
 */
async function ensureCameraPublished(page, peer) {
  const soon = Date.now() + 8_000;
  while (Date.now() < soon) {
    if (await sendsVideo(page)) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const button = page.locator(CAMERA_OFF_BUTTON);
  if (await button.count()) {
    await button.click();
  }
  await pollUntil('the web client publishes its camera (window.kammerDebug.publish sends live video)',
    () => sendsVideo(page), Boolean, STEP_TIMEOUT_MS, peer);
}

/**
 * Decoding statistics of the web client's subscribe connection for a participant's camera: from
 * the receiver of the track shown in its tile when the tile has one, else every video inbound-rtp.
 */
function cameraStats(page, participant) {
  return page.evaluate(async (id) => {
    const pc = window.kammerDebug && window.kammerDebug.subscribe;
    const tile = document.querySelector(`[data-participant="${id}"][data-source="camera"]`);
    if (!pc) return { tile: Boolean(tile), framesDecoded: 0, why: 'no window.kammerDebug.subscribe yet' };
    const video = tile && (tile.matches('video') ? tile : tile.querySelector('video'));
    const track = video && video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : null;
    let report;
    let scope = 'connection';
    try {
      report = await pc.getStats(track || null);
      if (track) scope = 'tile track';
    } catch {
      report = await pc.getStats();
    }
    let best = null;
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && (!best || (s.framesDecoded || 0) > (best.framesDecoded || 0))) {
        best = s;
      }
    });
    const codec = best && best.codecId && report.get(best.codecId);
    // The rest is for the failure message: where a stream that does not decode got stuck.
    return {
      tile: Boolean(tile),
      scope,
      framesDecoded: (best && best.framesDecoded) || 0,
      width: best && best.frameWidth,
      height: best && best.frameHeight,
      codec: codec ? codec.mimeType : null,
      videoWidth: video ? video.videoWidth : null,
      connection: pc.connectionState,
      packetsReceived: best ? best.packetsReceived : null,
      framesReceived: best ? best.framesReceived : null,
      keyFramesDecoded: best ? best.keyFramesDecoded : null,
      pliCount: best ? best.pliCount : null,
      tracks: window.kammerDebug.tracks,
    };
  }, participant);
}

async function participantId(page, name) {
  const entries = await page.$$eval('#participants li[data-participant-id]', (items) =>
    items.map((item) => [item.dataset.participantId, item.querySelector('.person-name').textContent]));
  const entry = entries.find(([, shown]) => shown === name);
  assert.ok(entry, `${name} is not in the participant list: ${JSON.stringify(entries)}`);
  return Number(entry[0]);
}

// ------------------------------------------------------------------------------------------------
// The test

test('aiortc and Chromium decode each other\'s video through kammer', { timeout: 180_000 }, async () => {
  const room = `interop-${randomBytes(6).toString('hex')}`;
  const verbose = process.env.KAMMER_INTEROP_VERBOSE === '1' ? ['--verbose'] : [];
  const peer = new AiortcPeer(['--url', baseUrl, '--ca-file', caFile, '--room', room, '--name', 'aiortc', '--admit-lobby', ...verbose]);
  const chrome = await newPage('en-US');
  try {
    // aiortc creates the room, so it is the moderator, and publishes its camera.
    const joined = await peer.waitFor('aiortc joins the room', (e) => e.event === 'joined');
    assert.equal(joined.role, 'moderator', 'aiortc created the room and moderates it');
    const aiortcId = joined.you;
    await peer.waitFor('the server answers aiortc\'s publish offer', (e) => e.event === 'published');
    await peer.waitFor('aiortc\'s publish connection connects',
      (e) => e.event === 'connection_state' && e.pc === 'publish' && e.state === 'connected', MEDIA_TIMEOUT_MS);

    // Chromium joins through the web client, waits in the lobby, and aiortc admits it.
    await chrome.page.goto(baseUrl);
    await chrome.page.fill('#join-room', room);
    await chrome.page.fill('#join-name', 'Chromium');
    await chrome.page.click('#join-submit');
    const admitted = await peer.waitFor('aiortc admits Chromium from the lobby',
      (e) => e.event === 'admitted' && e.name === 'Chromium');
    await step('Chromium reaches the meeting screen',
      chrome.page.locator('#meeting-screen').waitFor({ state: 'visible' }), peer);
    const browserId = await participantId(chrome.page, 'Chromium');
    assert.equal(browserId, admitted.participant, 'the participant aiortc admitted is the one Chromium shows as itself');
    await ensureCameraPublished(chrome.page, peer);

    // Both directions at once, so that a failure tells whether the other direction works.
    const directions = await Promise.allSettled([
      // 1. Chromium decodes aiortc's camera.
      (async () => {
        await step('Chromium shows a camera tile for aiortc',
          chrome.page.locator(`[data-participant="${aiortcId}"][data-source="camera"]`).first()
            .waitFor({ state: 'attached', timeout: MEDIA_TIMEOUT_MS }),
          peer);
        const first = await pollUntil(`Chromium decodes ${FRAMES_FIRST} frames of aiortc's camera`,
          () => cameraStats(chrome.page, aiortcId), (s) => s.tile && s.framesDecoded >= FRAMES_FIRST,
          MEDIA_TIMEOUT_MS, peer);
        const later = await pollUntil(`Chromium keeps decoding aiortc's camera (${FRAMES_MORE} frames more)`,
          () => cameraStats(chrome.page, aiortcId), (s) => s.tile && s.framesDecoded >= first.framesDecoded + FRAMES_MORE,
          MEDIA_TIMEOUT_MS, peer);
        assert.deepEqual({ width: later.width, height: later.height }, AIORTC_FRAME,
          `Chromium decodes frames of aiortc's size: ${JSON.stringify(later)}`);
        return `Chromium decoded aiortc's camera: ${JSON.stringify(later)}`;
      })(),
      // 2. aiortc decodes Chromium's camera.
      (async () => {
        const fromBrowser = (min) => (e) => e.event === 'frames' && e.participant === browserId &&
          e.source === 'camera' && e.kind === 'video' && e.count >= min;
        const seen = await peer.waitFor(`aiortc decodes ${FRAMES_FIRST} frames of Chromium's camera`,
          fromBrowser(FRAMES_FIRST), MEDIA_TIMEOUT_MS);
        const grown = await peer.waitFor(`aiortc keeps decoding Chromium's camera (${FRAMES_MORE} frames more)`,
          fromBrowser(seen.count + FRAMES_MORE), MEDIA_TIMEOUT_MS);
        assert.ok(grown.width > 0 && grown.height > 0, `aiortc decodes frames with a size: ${JSON.stringify(grown)}`);
        return `aiortc decoded Chromium's camera: ${JSON.stringify(grown)}`;
      })(),
    ]);
    for (const result of directions) {
      console.log(result.status === 'fulfilled' ? result.value : `FAILED: ${result.reason.message.split('\n')[0]}`);
    }
    const failed = directions.filter((result) => result.status === 'rejected');
    if (failed.length > 0) {
      throw new Error(failed.map((result) => result.reason.message).join('\n\n'));
    }

    const errors = peer.events.filter((e) => e.event === 'error' || e.event === 'fatal');
    assert.deepEqual(errors, [], 'aiortc received protocol errors');
    assert.deepEqual(chrome.problems, [], 'Chromium\'s page logged errors');

    // aiortc leaves cleanly when asked to.
    await peer.stop();
    assert.ok(peer.events.some((e) => e.event === 'stopped' && e.ok), `aiortc stops cleanly\n${peer.log()}`);
  } finally {
    await peer.stop();
    await chrome.context.close();
  }
});
