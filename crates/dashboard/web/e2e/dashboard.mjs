// The dashboard in a real browser (Debian's chromium, driven by playwright-core), against a
// private berth daemon that crates/cli/tests/dashboard.rs starts and fills. Each step does
// what a person would and checks what they would see. Screenshots of every page go to
// $DASH_SHOTS; the load and responsiveness figures to $DASH_RESULTS (JSON).
//
// Environment: DASH_URL_FILE (a file holding a login URL), BERTH (the binary), BERTH_HOST, DASH_IMAGE (an image
// in the test's registry, not in the daemon), DASH_MISSING (one the registry lacks),
// DASH_PROJECT (a compose project that is up), DASH_LOADED (how many other containers),
// DASH_SHOTS, DASH_RESULTS.

import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (the test crates/cli/tests/dashboard.rs sets it)`);
  return v;
};
const URL0 = readFileSync(env('DASH_URL_FILE'), 'utf8').trim();
const BERTH = env('BERTH');
const SHOTS = env('DASH_SHOTS');
const IMAGE = env('DASH_IMAGE');
const MISSING = env('DASH_MISSING');
const PROJECT = env('DASH_PROJECT');
const LOADED = Number(env('DASH_LOADED'));
const origin = new URL(URL0).origin;
mkdirSync(SHOTS, { recursive: true });
const results = {};
const T = 30_000;

function berth(...args) {
  return execFileSync(BERTH, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
function berthFails(...args) {
  try {
    execFileSync(BERTH, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return String(e.stderr);
  }
  throw new Error(`berth ${args.join(' ')} succeeded`);
}
let step = '';
function log(s) {
  step = s;
  console.log(`dashboard e2e: ${s}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // As root, chromium needs --no-sandbox; the rest keep it off this machine's closed network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
const page = await context.newPage();
page.setDefaultTimeout(T);
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png` });
const go = async (hash) => {
  await page.evaluate((h) => (location.hash = h), hash);
};

try {
  // ------------------------------------------------------------------ login, list, speed --
  log('log in with the token and see the containers listed');
  await page.goto(URL0);
  assert.equal(new URL(page.url()).pathname, '/', 'the login redirects to the page');
  assert.equal(new URL(page.url()).hash, '', 'the key is taken out of the address bar');
  await page.locator('tr[data-name="dash-web"]').waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.startsWith('berth_session_'));
  assert.ok(session, 'a session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.path, '/');
  const rows = await page.locator('table.containers tbody tr').count();
  assert.ok(rows >= LOADED + 3, `${rows} rows listed, want at least ${LOADED + 3}`);
  // Milliseconds from the navigation's start: the list's answer arrived (`fetched`: the
  // page's code loaded, the daemon answered) and every row is on screen (`listed`).
  const listed = async () =>
    page.evaluate(() => {
      const at = (n) => performance.getEntriesByName(n)[0]?.startTime ?? null;
      const nav = performance.getEntriesByType('navigation')[0];
      return { listed: at('berth:containers-listed'), fetched: at('berth:containers-fetched'), dom_loaded: nav?.domContentLoadedEventEnd ?? null };
    });
  results.first_load = await listed();
  const reloads = [];
  for (let i = 0; i < 5; i++) {
    await page.reload();
    await page.locator('tr[data-name="dash-web"]').waitFor();
    await page.waitForFunction(() => performance.getEntriesByName('berth:containers-listed').length > 0);
    reloads.push(await listed());
  }
  const median = (k) => reloads.map((r) => r[k]).sort((a, b) => a - b)[2];
  results.containers = rows;
  results.reloads = reloads;
  results.reload_median_ms = { listed: median('listed'), fetched: median('fetched'), dom_loaded: median('dom_loaded') };
  // Responsiveness with every row on the page: long tasks, and how long a filter takes to
  // show its one row.
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: 'longtask', buffered: true });
  });
  const filterMs = await page.evaluate(async () => {
    const input = document.querySelector('input[type=search]');
    const t = performance.now();
    input.value = 'dash-web';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    while (document.querySelectorAll('table.containers tbody tr').length !== 1) await new Promise((r) => requestAnimationFrame(r));
    const took = performance.now() - t;
    input.value = '';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    return took;
  });
  results.filter_ms = filterMs;
  await page.locator('table.containers tbody tr').nth(LOADED).waitFor();
  await shot('containers');

  // ------------------------------------------------------------ stop one, see it change --
  log('stop a container from the list and see its state change');
  await page.locator('tr[data-name="dash-stopme"][data-state="running"]').waitFor();
  await page.locator('tr[data-name="dash-stopme"] input[type=checkbox]').check();
  assert.equal(await page.locator('.bulk').getAttribute('data-selected'), '1');
  const tStop = Date.now();
  await page.locator('.bulk button[data-action="stop"]').click();
  await page.locator('tr[data-name="dash-stopme"][data-state="exited"]').waitFor();
  results.stop_seen_ms = Date.now() - tStop;
  results.long_tasks_ms = await page.evaluate(() => window.__long);
  assert.match(berth('inspect', '-f', '{{.State.Status}}', 'dash-stopme'), /exited/);

  // --------------------------------------------------------------------------- logs --
  log('follow logs and see a line printed after the page opened');
  await go('#/containers/dash-web/logs');
  await page.locator('.log-lines div').first().waitFor();
  const marker = `dash-marker-${Date.now()}`;
  berth('exec', 'dash-web', 'sh', '-c', `echo ${marker} > /proc/1/fd/1`);
  await page.locator('.log-lines', { hasText: marker }).waitFor();
  await page.locator('.logs input[type=search]').fill(marker);
  await page.waitForFunction((m) => [...document.querySelectorAll('.log-lines div')].length === 1 && document.querySelector('.log-lines mark')?.textContent === m, marker);
  await page.locator('.logs input[type=search]').fill('');
  assert.match(await page.locator('.log-lines .ts').first().textContent(), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  await shot('logs');

  // ----------------------------------------------------------------------- terminal --
  log('type a command into the terminal and read its output');
  await go('#/containers/dash-web/terminal');
  await page.locator('button[data-action="connect"]').click();
  await page.locator('[data-terminal-state="open"]').waitFor();
  const screen = page.locator('.xterm-rows');
  await screen.filter({ hasText: '#' }).waitFor();
  await page.locator('.xterm-helper-textarea').focus();
  await page.keyboard.type('echo dash-$((6*7))\n');
  await screen.filter({ hasText: 'dash-42' }).waitFor();
  await page.keyboard.type('stty size\n');
  await screen.filter({ hasText: /\n?\d+ \d+/ }).waitFor();
  const sizeOf = async () => {
    const text = await screen.innerText();
    const all = [...text.matchAll(/^(\d+) (\d+)\s*$/gm)];
    return all.length ? all[all.length - 1][0].trim() : '';
  };
  await page.waitForFunction(() => /^\d+ \d+\s*$/m.test(document.querySelector('.xterm-rows').innerText));
  const before = await sizeOf();
  await page.setViewportSize({ width: 1000, height: 700 });
  await page.waitForTimeout(500);
  await page.keyboard.type('clear; stty size\n');
  await page.waitForFunction((b) => {
    const t = document.querySelector('.xterm-rows').innerText;
    const m = [...t.matchAll(/^(\d+) (\d+)\s*$/gm)];
    return m.length && m[m.length - 1][0].trim() !== b;
  }, before);
  results.terminal_sizes = [before, await sizeOf()];
  await page.setViewportSize({ width: 1360, height: 860 });
  await page.keyboard.type('ls /\n');
  await page.waitForTimeout(300);
  await shot('terminal');

  // ------------------------------------------------- inspect, stats, top, files --
  log('inspect, stats, top and files of a container');
  await go('#/containers/dash-web/inspect');
  await page.locator('.inspect table.kv').first().waitFor();
  assert.ok(await page.locator('.inspect', { hasText: 'dash-marker' }).count() === 0);
  await page.locator('.inspect th', { hasText: 'Command' }).waitFor();
  await shot('inspect');
  await go('#/containers/dash-web/stats');
  await page.waitForFunction(() => [...document.querySelectorAll('.chart h2 .dim')].every((e) => e.textContent.trim().length > 0));
  await page.waitForTimeout(2500);
  await shot('stats');
  await go('#/containers/dash-web/top');
  await page.locator('table.top td', { hasText: 'sh' }).first().waitFor();
  await shot('top');
  await go('#/containers/dash-web/files');
  // Into /etc by its path (an archive of a running container's / walks its /proc and /sys,
  // which berth's daemon breaks off: the page lists what came and says so).
  await page.locator('.files input[name=path]').fill('/etc');
  await page.locator('.files input[name=path]').press('Enter');
  await page.locator('tr[data-file="passwd"]').waitFor();
  await page.locator('tr[data-file="hostname"]').waitFor();
  const download = page.waitForEvent('download');
  await page.locator('tr[data-file="passwd"] button').click();
  const file = await download;
  const saved = `${SHOTS}/passwd.download`;
  await file.saveAs(saved);
  assert.match(readFileSync(saved, 'utf8'), /^root:/);
  await shot('files');

  // ------------------------------------------------------------------------- images --
  log('pull an image from the registry and watch it reach "Pull complete"');
  await go('#/images');
  await page.locator('table.images').waitFor();
  await page.locator('.pull input').fill(IMAGE);
  await page.locator('button[data-action="pull"]').click();
  await page.locator('tr[data-status="Pull complete"]').first().waitFor();
  await page.locator('.pull-status', { hasText: 'Status: Downloaded newer image' }).waitFor();
  await page.locator(`tr[data-image="${IMAGE}"]`).waitFor();
  await shot('images');
  log('a daemon error is shown in the daemon\'s words');
  const cliError = berthFails('pull', MISSING).trim();
  await page.locator('.pull input').fill(MISSING);
  await page.locator('button[data-action="pull"]').click();
  const shown = (await page.locator('.pull .failure').textContent()).trim();
  assert.ok(cliError.includes(shown.replace(/^Error response from daemon: /, '')), `page: ${shown}\ncli: ${cliError}`);
  results.daemon_error = shown;
  log("an image's page: history, waste analysis, lint");
  await go(`#/images/${IMAGE}`);
  await page.locator('table.layers-analysis tbody tr').first().waitFor();
  await page.locator('section.history tbody tr').first().waitFor();
  await page.locator('section.lint li[data-rule="runs-as-root"]').waitFor();
  await page.locator('section.analysis td.waste').first().waitFor();
  await page.locator('section.analysis td.mono', { hasText: '/cache.bin' }).waitFor();
  await shot('image');

  // ------------------------------------------------------------------------ compose --
  log('a compose project: down from the page, then up again');
  await go('#/compose');
  const proj = page.locator(`section.project[data-project="${PROJECT}"]`);
  await proj.locator('tr[data-state="running"]').first().waitFor();
  await shot('compose');
  await proj.locator('button[data-action="down"]').click();
  await page.locator(`.project-row[data-project="${PROJECT}"]`).waitFor();
  assert.equal(berth('ps', '-aq', '--filter', `label=com.docker.compose.project=${PROJECT}`).trim(), '');
  await page.locator(`.project-row[data-project="${PROJECT}"] button[data-action="up"]`).click();
  await proj.locator('tr[data-state="running"]').first().waitFor();
  assert.notEqual(berth('ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`).trim(), '');

  // ----------------------------------------------------- volumes, networks, events, df --
  log('volumes, networks, events and disk use');
  await go('#/volumes');
  await page.locator('tr[data-volume="dash-data"] a.user', { hasText: 'dash-web' }).waitFor();
  await shot('volumes');
  await go('#/networks');
  await page.locator('tr[data-network="bridge"]').waitFor();
  await shot('networks');
  await go('#/events');
  await page.locator('table.events tr[data-action="stop"]').first().waitFor();
  await shot('events');
  await go('#/disk');
  await page.locator('tr[data-kind="images"]').waitFor();
  await shot('disk');

  // --------------------------------------------------------- refusals, from a browser --
  log('another origin cannot use the session (no CORS, no cross-site request, no WebSocket)');
  const evil = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>evil</title>');
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const evilOrigin = `http://127.0.0.1:${evil.address().port}`;
  const other = await context.newPage();
  await other.goto(evilOrigin);
  const stopId = berth('inspect', '-f', '{{.Id}}', 'dash-idle').trim();
  const outcome = await other.evaluate(
    async ({ origin, id }) => {
      const r = {};
      try {
        const resp = await fetch(`${origin}/api/v1.44/containers/json`, { credentials: 'include' });
        r.read = `status ${resp.status}`;
      } catch (e) {
        r.read = `blocked: ${e.message}`;
      }
      await fetch(`${origin}/api/v1.44/containers/${id}/stop`, { method: 'POST', credentials: 'include', mode: 'no-cors' }).catch(() => null);
      r.ws = await new Promise((done) => {
        const ws = new WebSocket(`${origin.replace('http', 'ws')}/api/v1.44/events`, ['berth']);
        ws.onopen = () => done('opened');
        ws.onerror = () => done('refused');
      });
      return r;
    },
    { origin, id: stopId },
  );
  evil.close();
  assert.match(outcome.read, /^blocked/, 'no CORS: another origin cannot read an answer');
  assert.equal(outcome.ws, 'refused');
  assert.match(berth('inspect', '-f', '{{.State.Status}}', 'dash-idle'), /running/, 'a cross-site POST changed nothing');
  results.foreign_origin = outcome;
  await other.close();

  assert.deepEqual(errors, [], 'no script error on the page');
  writeFileSync(env('DASH_RESULTS'), JSON.stringify(results, null, 2));
  console.log(`dashboard e2e: passed ${JSON.stringify(results)}`);
} catch (e) {
  console.error(`dashboard e2e: FAILED at "${step}": ${e.stack ?? e}`);
  if (errors.length) console.error(`page errors: ${errors.join('\n')}`);
  await shot('failure').catch(() => undefined);
  process.exitCode = 1;
} finally {
  await browser.close();
}
