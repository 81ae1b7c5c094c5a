// Shared by the browser system tests: starting the real `kammer demo` and Debian Chromium.
//
// Nothing here skips: a missing KAMMER_BIN or a missing Chromium makes the tests fail.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];
// Playwright gives every launched browser a fresh temporary profile (--user-data-dir).
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless=new',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Camera, microphone and screen capture from Chromium's built-in test sources, allowed
  // without a prompt. getDisplayMedia works headless with these two.
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // The appliance's media port listens on 127.0.0.1 in the demo.
  '--allow-loopback-in-peer-connection',
];
export const SERVER_START_TIMEOUT_MS = 60_000;

export function kammerBinary() {
  const bin = process.env.KAMMER_BIN;
  if (!bin) {
    throw new Error('KAMMER_BIN is not set. Run: KAMMER_BIN=/path/to/kammer npm test');
  }
  if (!existsSync(bin) || !statSync(bin).isFile()) {
    throw new Error(`KAMMER_BIN=${bin} does not exist or is not a file; build the kammer binary first.`);
  }
  return bin;
}

export function chromiumExecutable() {
  const found = CHROMIUM_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `No Chromium at ${CHROMIUM_CANDIDATES.join(' or ')}: the Debian package "chromium" must be installed ` +
        '(apt-get install chromium).',
    );
  }
  return found;
}

/** Launches Chromium with the common flags; `args` replaces them when given. */
export function launchChromium(args = CHROMIUM_ARGS) {
  return chromium.launch({ executablePath: chromiumExecutable(), args, timeout: 30_000 });
}

/** One `kammer demo` process on a free port with its own state directory. */
export class Kammer {
  constructor() {
    this.process = null;
    this.stateDir = null;
    this.url = null;
    this.media = null;
    this.output = { stdout: '', stderr: '' };
  }

  append(key, chunk) {
    this.output[key] = (this.output[key] + chunk).slice(-200_000);
  }

  log() {
    return `--- kammer stdout ---\n${this.output.stdout}\n--- kammer stderr ---\n${this.output.stderr}`;
  }

  /** Starts the demo and resolves with the URL it prints (and notes its media port, if any). */
  async start() {
    const bin = kammerBinary();
    this.stateDir = await mkdtemp(join(tmpdir(), 'kammer-browser-'));
    const child = spawn(bin, ['demo', '--port', '0', '--state-dir', this.stateDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    this.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`kammer printed no "URL: https://…" line within ${SERVER_START_TIMEOUT_MS / 1000} s.\n${this.log()}`));
      }, SERVER_START_TIMEOUT_MS);
      child.stdout.on('data', (chunk) => {
        this.append('stdout', chunk);
        // "Media:" comes before the closing "Trust the CA file" line, when there is a media port.
        const url = this.output.stdout.match(/URL:\s+(https:\/\/\S+)/);
        const done = /Trust the CA file/.test(this.output.stdout);
        if (url && done) {
          clearTimeout(timer);
          const media = this.output.stdout.match(/Media:\s+udp\s+(\S+)/);
          this.media = media ? media[1] : null;
          resolve(new URL('/', url[1]).href);
        }
      });
      child.stderr.on('data', (chunk) => this.append('stderr', chunk));
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`could not start ${bin}: ${error.message}`));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`kammer exited before it was ready (code ${code}, signal ${signal}).\n${this.log()}`));
      });
    });
    return this.url;
  }

  async stop() {
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), 5_000));
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    }
    if (this.stateDir) {
      await rm(this.stateDir, { recursive: true, force: true });
      this.stateDir = null;
    }
  }
}

/** Awaits `promise`, prefixing a failure with what the test was waiting for and the server log. */
export async function step(kammer, what, promise) {
  try {
    return await promise;
  } catch (error) {
    throw new Error(`${what}: ${error.message}\n${kammer.log().slice(-4_000)}`);
  }
}

export function roomName() {
  return `r-${randomBytes(6).toString('hex')}`;
}
