// Starts a real ShopFlow (restate-server, service endpoint, web) on free ports with a
// fresh data directory, and a headless Debian Chromium that may only talk to it.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const shots = path.join(root, 'target', 'e2e');

/** A port nobody listens on, from 12000–19999: below Linux's ephemeral range (32768 and
 * up), where a port the kernel called free may be taken the next moment as the local end
 * of an outgoing connection (the load generators of the bench smoke run beside these
 * tests), and below the 20000–31999 the Rust tests use. Each process starts at its own
 * offset and counts up. */
let nextPort = (process.pid * 7919) % 8000;
export async function freePort() {
  for (;;) {
    const port = 12000 + (nextPort++ % 8000);
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.unref();
      server.on('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function eventually(check, what, deadlineMs = 30000) {
  const started = Date.now();
  let last;
  while (Date.now() - started < deadlineMs) {
    try {
      const value = await check();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/**
 * Starts ShopFlow (in demo mode unless `demo: false`); `stop()` ends it and removes its data, `restart()` stops it and
 * starts it again on the same ports and data (a server restart under open pages).
 */
export async function startApp({ deliveryDelay = '1s', demo = true, env = {} } = {}) {
  // Demo mode (the page's user picker, no passwords) unless a test asks for sign-in.
  env = { SHOPFLOW_TRUST_USER_HEADER: String(demo), ...env };
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'shopflow-e2e-'));
  const ports = await Promise.all(Array.from({ length: 5 }, freePort));
  let app = await launch(dataDir, ports, deliveryDelay, env);
  return {
    url: app.url,
    log: () => app.log(),
    /** Runs an operator command (`shopflow user add …`) on this app's data, feeding `input`. */
    cli(args, input = '') {
      const result = spawnSync(binary(), args, {
        input,
        env: { ...process.env, SHOPFLOW_DATA_DIR: dataDir },
        encoding: 'utf8',
      });
      if (result.status !== 0) throw new Error(`shopflow ${args.join(' ')}: ${result.stderr}`);
      return result.stdout;
    },
    async restart() {
      await app.stop();
      app = await launch(dataDir, ports, deliveryDelay, env);
    },
    async stop() {
      await app.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function binary() {
  return process.env.SHOPFLOW_BIN ?? path.join(root, 'target', 'debug', 'shopflow');
}

async function launch(dataDir, [http, services, ingress, admin, node], deliveryDelay, env) {
  const child = spawn(binary(), [], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RUST_LOG: 'warn',
      SHOPFLOW_DATA_DIR: dataDir,
      SHOPFLOW_HTTP_ADDR: `127.0.0.1:${http}`,
      SHOPFLOW_SERVICES_ADDR: `127.0.0.1:${services}`,
      SHOPFLOW_RESTATE_INGRESS_ADDR: `127.0.0.1:${ingress}`,
      SHOPFLOW_RESTATE_ADMIN_ADDR: `127.0.0.1:${admin}`,
      SHOPFLOW_RESTATE_NODE_ADDR: `127.0.0.1:${node}`,
      SHOPFLOW_DELIVERY_DELAY: deliveryDelay,
      ...env,
    },
  });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const url = `http://127.0.0.1:${http}`;
  await Promise.race([
    eventually(() => log.includes('ShopFlow is running'), 'ShopFlow to start', 60000),
    exited.then((code) => {
      throw new Error(`shopflow exited (${code}) during start-up:\n${log}`);
    }),
  ]);
  return {
    url,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        process.kill(-child.pid, 'SIGTERM');
        await exited;
      }
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

/**
 * A browser context whose pages are watched: console errors, page errors and any
 * request that is not for the app's own origin end up in `problems`.
 */
export async function watchedContext(browser, appUrl, problems, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, ...options });
  const origin = new URL(appUrl).origin;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin !== origin) {
      problems.push(`request left localhost: ${url}`);
      return route.abort();
    }
    return route.continue();
  });
  context.on('page', (page) => watchPage(page, problems));
  return context;
}

function watchPage(page, problems) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
}

export async function screenshot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}
