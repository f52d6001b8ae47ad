// The browser's view of an order's lifecycle: the time from the admin's Approve click
// to the shopper's page showing the delivered notification (1 s delivery delay), over
// n orders. Run by `make bench` against the release binary.
import { eventually, launchBrowser, startApp, watchedContext } from './harness.mjs';

const runs = Number(process.env.RUNS ?? 10);
const app = await startApp({ deliveryDelay: '1s' });
const browser = await launchBrowser();
const problems = [];

async function signIn(user) {
  const page = await (await watchedContext(browser, app.url, problems)).newPage();
  await page.goto(app.url);
  await page.selectOption('#user-select', user);
  await page.click('#user-picker button[type="submit"]');
  await eventually(async () => (await page.textContent('#live')) === 'Live', 'the stream');
  return page;
}

const click = async (page, label) =>
  page.locator('#nav ul').getByRole('button', { name: label, exact: true }).click();

try {
  const shopper = await signIn('grace');
  const admin = await signIn('admin');
  await click(admin, 'Admin');
  await admin.click('#tab-input');
  const samples = [];
  for (let i = 0; i < runs; i++) {
    await click(shopper, 'Products');
    await shopper.click('#tab-input');
    await shopper.click('#add-P008');
    await eventually(async () => (await shopper.textContent('#flash')).includes('Added'), 'added');
    await click(shopper, 'Cart');
    await shopper.locator('#shipping-address').waitFor();
    await shopper.fill('#shipping-address', `${i} Bench St`);
    await shopper.click('#checkout-button');
    await shopper.locator('#workflow-meta[data-status="awaiting_payment"]').waitFor();
    const orderId = await shopper.getAttribute('#workflow-meta', 'data-order-id');
    await shopper.click('#pay-button');
    await shopper.locator('#workflow-meta[data-status="awaiting_approval"]').waitFor();
    const approve = admin.getByRole('button', { name: `Approve ${orderId}` });
    await approve.waitFor();
    const delivered = `Order ${orderId}: delivered`;
    const started = performance.now();
    await approve.click();
    await shopper.waitForFunction(
      (text) => [...document.querySelectorAll('#notification-list li')].some((li) => li.textContent.includes(text)),
      delivered,
      { polling: 'raf', timeout: 30000 },
    );
    samples.push(performance.now() - started);
  }
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  console.log(
    `approve click → delivered notification (1 s delivery delay, n=${runs}): ` +
      `median ${at(0.5).toFixed(0)} ms, p90 ${at(0.9).toFixed(0)} ms, min ${samples[0].toFixed(0)} ms, max ${samples.at(-1).toFixed(0)} ms`,
  );
  if (problems.length) console.log('problems:', problems);
} finally {
  await browser.close();
  await app.stop();
}
