// System test of the media plane: the real `kammer` binary, headless Chromium with its fake camera,
// microphone and screen, and the embedded web client. Audio and video go through the appliance's
// UDP media port (SFU) exactly as in a real meeting.
//
//   KAMMER_BIN=/path/to/kammer npm test
//
// The client keeps its two peer connections on `window.kammerDebug` (non-enumerable, read-only;
// see app.js): `subscribe.getStats()` tells whether the others' media is decoded, and
// `kammerDebug.tracks` maps the subscribe connection's media sections (mid) to participant and
// source, as the server's `subscribe_offer` named them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  CHROMIUM_ARGS, Kammer, chromiumExecutable, kammerBinary, launchChromium, roomName, step as stepWith,
} from './support.js';

const STEP_TIMEOUT_MS = 30_000;
// Media start-up (ICE, DTLS, the first key frame) on a loaded two-core machine can be slow.
const MEDIA_TIMEOUT_MS = 90_000;
const POLL_MS = 500;
// The same flags without the fake devices, and every permission prompt declined: a browser with
// no usable camera or microphone (none present, or access denied).
const NO_DEVICE_ARGS = CHROMIUM_ARGS.filter((arg) =>
  arg !== '--use-fake-device-for-media-stream' && arg !== '--use-fake-ui-for-media-stream')
  .concat('--deny-permission-prompts');

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

function step(what, promise) {
  return stepWith(kammer, what, promise);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A participant in a browser context of its own (own profile, own fake devices). */
async function openParticipant(name, inBrowser = browser) {
  const context = await inBrowser.newContext({
    ignoreHTTPSErrors: true,
    locale: 'en-US',
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') {
      problems.push(`console error: ${message.text()}`);
    }
  });
  return { name, id: null, context, page, problems };
}

/**
 * Joins `room`. Without `moderator` the participant creates the room; otherwise the moderator
 * admits them from the lobby. Resolves with the participant, its `id` filled in.
 */
async function enter(participant, room, moderator) {
  const { page, name } = participant;
  await page.goto(`${baseUrl}?room=${room}`);
  await page.fill('#join-name', name);
  await page.click('#join-submit');
  if (moderator) {
    await step(`${name} waits in the lobby`, page.locator('#lobby-screen').waitFor({ state: 'visible' }));
    const entry = moderator.page.locator('#lobby-list li', { hasText: name });
    await step(`${moderator.name} sees ${name} in the lobby`, entry.waitFor());
    await entry.locator('button[data-action=admit]').click();
  }
  await step(`${name} reaches the meeting`, page.locator('#meeting-screen').waitFor({ state: 'visible' }));
  const own = page.locator('#video-grid li[data-self="true"][data-source="camera"]');
  await step(`${name}'s own tile appears`, own.waitFor());
  participant.id = Number(await own.getAttribute('data-participant'));
  assert.ok(Number.isSafeInteger(participant.id), `${name}'s tile names no participant`);
  return participant;
}

function tile(viewer, of, source) {
  return viewer.page.locator(`#video-grid li[data-participant="${of.id}"][data-source="${source}"]`);
}

/** Waits until `viewer` shows the video of `of`'s `source` in its tile (a received track, camera on). */
function shownVideo(viewer, of, source) {
  return tile(viewer, of, source).and(viewer.page.locator('[data-video="shown"]'))
    .locator('video').waitFor({ state: 'visible', timeout: MEDIA_TIMEOUT_MS });
}

/**
 * The counters of every received track of `page`: frames decoded for video, audio samples
 * received for audio; each with the participant and source that `subscribe_offer` named.
 */
function inboundCounters(page) {
  return page.evaluate(async () => {
    const debug = window.kammerDebug;
    const pc = debug && debug.subscribe;
    if (!pc) {
      return [];
    }
    const byMid = new Map(debug.tracks.map((track) => [track.mid, track]));
    // Older browsers have no `mid` in inbound-rtp statistics; the track ID leads there as well.
    const midOfTrack = new Map(pc.getTransceivers()
      .filter((transceiver) => transceiver.mid !== null)
      .map((transceiver) => [transceiver.receiver.track.id, transceiver.mid]));
    const report = await pc.getStats();
    const rows = [];
    report.forEach((stats) => {
      if (stats.type !== 'inbound-rtp') {
        return;
      }
      const mid = stats.mid !== undefined ? stats.mid : midOfTrack.get(stats.trackIdentifier);
      const track = byMid.get(mid);
      if (!track) {
        return;
      }
      rows.push({
        participant: track.participant,
        source: track.source,
        kind: stats.kind,
        value: stats.kind === 'video' ? stats.framesDecoded || 0 : stats.totalSamplesReceived || 0,
        // For the failure message: where a stalled track got stuck.
        detail: stats.kind === 'video'
          ? `packets ${stats.packetsReceived} lost ${stats.packetsLost} frames ${stats.framesReceived} ` +
            `key frames ${stats.keyFramesDecoded} pli ${stats.pliCount} nack ${stats.nackCount} codec ${stats.codecId}`
          : `packets ${stats.packetsReceived} lost ${stats.packetsLost}`,
      });
    });
    return rows;
  });
}

/**
 * Waits until each of `expected` ({ from, source }) is received by `viewer` and its counter keeps
 * growing: a first sample once all are present, then a later one that is larger for every track.
 */
async function expectFlowing(viewer, expected, what) {
  const key = (participant, source) => `${participant}:${source}`;
  const wanted = expected.map(({ from, source }) => key(from.id, source));
  const deadline = Date.now() + MEDIA_TIMEOUT_MS;
  let first = null;
  let last = [];
  while (Date.now() < deadline) {
    last = await inboundCounters(viewer.page);
    const now = new Map(last.map((row) => [key(row.participant, row.source), row.value]));
    if (first === null) {
      if (wanted.every((name) => now.has(name))) {
        first = now;
      }
    } else if (wanted.every((name) => now.get(name) > first.get(name))) {
      return;
    }
    await sleep(POLL_MS);
  }
  const firstText = first ? JSON.stringify(Object.fromEntries(first)) : 'never all present';
  throw new Error(`${what}: not every track grew within ${MEDIA_TIMEOUT_MS / 1000} s.\n` +
    `wanted ${JSON.stringify(wanted)}; first sample ${firstText}; last ${JSON.stringify(last)}\n` +
    kammer.log().slice(-4_000));
}

/** Every participant receives every other's microphone and camera, and both keep flowing. */
async function expectEveryoneHearsAndSeesEveryone(participants) {
  for (const viewer of participants) {
    for (const other of participants) {
      if (other !== viewer) {
        await step(`${viewer.name} shows ${other.name}'s video`, shownVideo(viewer, other, 'camera'));
      }
    }
  }
  await Promise.all(participants.map((viewer) => {
    const expected = participants.filter((other) => other !== viewer)
      .flatMap((other) => [{ from: other, source: 'microphone' }, { from: other, source: 'camera' }]);
    return expectFlowing(viewer, expected, `${viewer.name} receives audio and video from everyone`);
  }));
}

/** Remembers, inside `viewer`'s page, the receiving tracks and transceivers of `of`. */
async function watchTracksOf(viewer, of) {
  const count = await viewer.page.evaluate((id) => {
    const debug = window.kammerDebug;
    const mids = new Set(debug.tracks.filter((track) => track.participant === id).map((track) => track.mid));
    window.kammerTestWatched = debug.subscribe.getTransceivers()
      .filter((transceiver) => mids.has(transceiver.mid))
      .map((transceiver) => ({ transceiver, track: transceiver.receiver.track }));
    return window.kammerTestWatched.length;
  }, of.id);
  assert.ok(count >= 2, `${viewer.name} receives ${count} tracks of ${of.name}, expected microphone and camera`);
}

/** After `gone` left: no tile of theirs at `viewer`, and every track of theirs has ended. */
async function expectGone(viewer, gone) {
  await step(`${gone.name}'s tiles disappear for ${viewer.name}`,
    viewer.page.locator(`#video-grid li[data-participant="${gone.id}"]`).first()
      .waitFor({ state: 'detached', timeout: MEDIA_TIMEOUT_MS }));
  await step(`${gone.name}'s tracks end for ${viewer.name}`, viewer.page.waitForFunction((id) => {
    const debug = window.kammerDebug;
    const listed = debug.tracks.some((track) => track.participant === id);
    const ended = window.kammerTestWatched.every(({ transceiver, track }) =>
      track.readyState === 'ended' || transceiver.currentDirection === 'stopped' ||
      !debug.subscribe.getTransceivers().includes(transceiver));
    return !listed && ended;
  }, gone.id, { timeout: MEDIA_TIMEOUT_MS, polling: POLL_MS }));
}

async function shareScreen(sharer, viewers) {
  await sharer.page.click('#screen-toggle');
  await step(`${sharer.name}'s screen button shows pressed`,
    sharer.page.locator('#screen-toggle[aria-pressed="true"]').waitFor());
  for (const viewer of viewers) {
    await step(`${viewer.name} shows ${sharer.name}'s screen tile`, shownVideo(viewer, sharer, 'screen'));
  }
  await Promise.all(viewers.map((viewer) =>
    expectFlowing(viewer, [{ from: sharer, source: 'screen' }], `${viewer.name} receives ${sharer.name}'s screen`)));
}

function expectNoProblems(participants) {
  for (const { name, problems } of participants) {
    assert.deepEqual(problems, [], `${name}'s page logged errors`);
  }
}

async function closeAll(participants) {
  await Promise.all(participants.map(({ context }) => context.close().catch(() => {})));
}

// ------------------------------------------------------------------------------------------------
// Tests

test('two participants: audio and video both ways, screen share, leaving ends the tracks', { timeout: 400_000 }, async () => {
  const room = roomName();
  const alice = await openParticipant('Alice');
  const bob = await openParticipant('Bob');
  try {
    await enter(alice, room);
    await enter(bob, room, alice);
    await expectEveryoneHearsAndSeesEveryone([alice, bob]);

    // The others' `media` field reaches the tiles: Alice mutes, Bob sees it.
    await step('Bob sees Alice\'s microphone on', tile(bob, alice, 'camera').and(bob.page.locator('[data-microphone="on"]')).waitFor());
    await alice.page.click('#mic-toggle');
    await step('Alice\'s mute button shows pressed', alice.page.locator('#mic-toggle[aria-pressed="true"]').waitFor());
    await step('Bob sees Alice muted', tile(bob, alice, 'camera').and(bob.page.locator('[data-microphone="off"]')).waitFor());
    await alice.page.click('#mic-toggle');
    await step('Bob sees Alice unmuted', tile(bob, alice, 'camera').and(bob.page.locator('[data-microphone="on"]')).waitFor());

    // Screen share: it reaches Bob in a tile of its own, and ends when Alice stops it.
    await shareScreen(alice, [bob]);
    await alice.page.click('#screen-toggle');
    await step('Alice\'s screen tile disappears for Bob',
      tile(bob, alice, 'screen').waitFor({ state: 'detached', timeout: MEDIA_TIMEOUT_MS }));

    // Bob leaves with the button: his tiles go and his tracks end at Alice.
    await watchTracksOf(alice, bob);
    await bob.page.click('#leave');
    await step('Bob is back on the join page', bob.page.locator('#join-screen').waitFor({ state: 'visible' }));
    await expectGone(alice, bob);

    expectNoProblems([alice, bob]);
  } finally {
    await closeAll([alice, bob]);
  }
});

/** The supervisor's count of sandbox violations (state_dir/run/status.json). */
async function violations() {
  const status = JSON.parse(await readFile(join(kammer.stateDir, 'run', 'status.json'), 'utf8'));
  return status.violations;
}

/** Makes the media worker of a test build attempt `what`, as a taken-over parser would. */
async function provokeMediaWorker(what) {
  const [host, port] = [kammer.media.slice(0, kammer.media.lastIndexOf(':')), Number(kammer.media.slice(kammer.media.lastIndexOf(':') + 1))];
  const socket = createSocket('udp4');
  await new Promise((resolve, reject) => socket.send(`KAMMER-TEST-VIOLATION ${what}`, port, host, (error) => (error ? reject(error) : resolve())));
  socket.close();
}

test('a media worker killed by its sandbox is replaced and the meeting\'s media resumes', { timeout: 400_000 }, async () => {
  const room = roomName();
  const alice = await openParticipant('Alice');
  const bob = await openParticipant('Bob');
  try {
    await enter(alice, room);
    await enter(bob, room, alice);
    await expectEveryoneHearsAndSeesEveryone([alice, bob]);
    const before = await violations();
    for (const { page } of [alice, bob]) {
      await page.evaluate(() => { window.subscribeBeforeReset = window.kammerDebug.subscribe; });
    }

    // A test build's media worker attempts execve when a loopback datagram says so: seccomp
    // kills it, the supervisor records it and starts a new one, the clients publish again.
    await provokeMediaWorker('execve');
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while ((await violations()) === before) {
      assert.ok(Date.now() < deadline, 'no sandbox violation recorded: is KAMMER_BIN a test build (--features kammer/test-hooks)?');
      await sleep(POLL_MS);
    }
    for (const { page, name } of [alice, bob]) {
      await step(`${name} receives on a new subscribe connection`, page.waitForFunction(
        () => window.kammerDebug.subscribe && window.kammerDebug.subscribe !== window.subscribeBeforeReset,
        null, { timeout: MEDIA_TIMEOUT_MS, polling: POLL_MS }));
    }
    await expectEveryoneHearsAndSeesEveryone([alice, bob]);
    // The signalling went on throughout: chat still works.
    await alice.page.fill('#chat-input', 'still here');
    await alice.page.press('#chat-input', 'Enter');
    await step('Bob reads Alice\'s chat', bob.page.locator('#chat-log', { hasText: 'still here' }).waitFor());
    expectNoProblems([alice, bob]);
  } finally {
    await closeAll([alice, bob]);
  }
});

test('four participants: everyone receives everyone, a screen share reaches all, a closed page ends its tracks', { timeout: 600_000 }, async () => {
  const room = roomName();
  const names = ['Anna', 'Ben', 'Carla', 'Deniz'];
  const people = [];
  try {
    for (const name of names) {
      people.push(await openParticipant(name));
    }
    const [anna, ben, carla, deniz] = people;
    await enter(anna, room);
    for (const guest of [ben, carla, deniz]) {
      await enter(guest, room, anna);
    }
    for (const viewer of people) {
      await step(`${viewer.name} has four tiles`, viewer.page.waitForFunction(
        () => document.querySelectorAll('#video-grid li[data-source="camera"]').length === 4));
    }
    await expectEveryoneHearsAndSeesEveryone(people);

    // Carla shares her screen; the three others receive it.
    await shareScreen(carla, [anna, ben, deniz]);

    // Deniz closes the page without leaving; the server notices and ends Deniz's tracks.
    const remaining = [anna, ben, carla];
    for (const viewer of remaining) {
      await watchTracksOf(viewer, deniz);
    }
    await deniz.page.close();
    for (const viewer of remaining) {
      await expectGone(viewer, deniz);
    }
    // The others keep receiving each other.
    await expectEveryoneHearsAndSeesEveryone(remaining);

    expectNoProblems(people);
  } finally {
    await closeAll(people);
  }
});

test('without camera and microphone: a clear message, and the meeting works', { timeout: 300_000 }, async () => {
  const room = roomName();
  const bare = await launchChromium(NO_DEVICE_ARGS);
  const host = await openParticipant('Host');
  const guest = await openParticipant('Guest', bare);
  try {
    await enter(host, room);
    await enter(guest, room, host);
    // Either no device exists or the browser declined the prompt; both are explained in words.
    await step('the guest is told that camera and microphone are unavailable', guest.page.locator('#notice', {
      hasText: /No camera and no microphone found|Access to camera and microphone was denied/,
    }).waitFor());
    await step('the guest\'s controls show microphone and camera off', Promise.all([
      guest.page.locator('#mic-toggle[aria-pressed="true"]').waitFor(),
      guest.page.locator('#camera-toggle[aria-pressed="true"]').waitFor(),
    ]));
    await step('the host sees the guest without microphone and camera',
      tile(host, guest, 'camera').and(host.page.locator('[data-microphone="off"][data-camera="off"]')).waitFor());
    // The guest still hears and sees the host.
    await expectFlowing(guest, [{ from: host, source: 'microphone' }, { from: host, source: 'camera' }],
      'the guest receives the host\'s audio and video');
    // Chat still works.
    await guest.page.fill('#chat-input', 'Ich höre euch.');
    await guest.page.press('#chat-input', 'Enter');
    await step('the guest\'s chat reaches the host',
      host.page.locator('#chat-log .chat-message', { hasText: 'Ich höre euch.' }).waitFor());
    expectNoProblems([host, guest]);
  } finally {
    await closeAll([host, guest]);
    await bare.close().catch(() => {});
  }
});
