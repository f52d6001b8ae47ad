// An open page outlives a restart of the whole server: its stream is opened again
// and live updates resume without a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { eventually, launchBrowser, screenshot, startApp, watchedContext } from './harness.mjs';

let app;
let browser;

before(async () => {
  app = await startApp({ deliveryDelay: '1s' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('an open page picks up a restarted server and keeps updating live', async () => {
  const problems = [];
  const context = await watchedContext(browser, app.url, problems);
  const page = await context.newPage();
  await page.goto(app.url);
  await page.selectOption('#user-select', 'frank');
  await page.click('#user-picker button[type="submit"]');
  const live = () => page.textContent('#live');
  await eventually(async () => (await live()) === 'Live', 'the stream');
  await page.locator('#nav ul').getByRole('button', { name: 'Cart', exact: true }).click();
  const view = () => page.getAttribute('#input-pane', 'data-view');
  await eventually(async () => (await view()) === 'cart', 'the Cart view');
  await page.evaluate(() => (window.__sameDocument = true));

  await app.restart();
  // The page noticed the drop, and came back on its own.
  await eventually(async () => (await live()) === 'Live', 'the stream to come back', 60000);

  // A change made now (through the API, as another client would) reaches the page.
  const response = await fetch(`${app.url}/api/cart/add`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': 'frank' },
    body: JSON.stringify({ product_id: 'P005', quantity: 1 }),
  });
  assert.equal(response.status, 200);
  const checkout = await fetch(`${app.url}/api/checkout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-id': 'frank' },
    body: JSON.stringify({ shipping_address: '5 Park Lane' }),
  });
  assert.equal(checkout.status, 202);
  const { order_id: orderId } = await checkout.json();
  await eventually(
    async () => (await page.textContent('#notification-list')).includes(`Order ${orderId}: awaiting payment`),
    'the new order in the notifications',
  );
  assert.equal(await page.evaluate(() => window.__sameDocument), true, 'no reload happened');
  // The new server did not know the page; the page told it what it shows.
  assert.equal(await view(), 'cart');
  await eventually(
    async () => (await page.textContent('#output-pane')).includes('Gizmo Mini'),
    'the cart pane to follow the change',
  );
  const ids = await page.locator('#notification-list li.notification').evaluateAll((lis) => lis.map((li) => li.id));
  assert.equal(new Set(ids).size, ids.length, 'no notification twice');
  await screenshot(page, '12-after-server-restart');
  // While the server was down the browser reported the failed connections; anything
  // else (a script error, a request elsewhere) is a fault.
  const unexpected = problems.filter(
    (p) => !/Failed to load resource|net::ERR_|network error|Datastar failed to reach|Max retries reached|SseFetchFailed/.test(p),
  );
  assert.deepEqual(unexpected, []);
});
