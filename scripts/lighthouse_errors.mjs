// Lighthouse accessibility of forms in their error state, for scripts/lighthouse.sh.
//
//   node lighthouse_errors.mjs BASE OUT_DIR < lines of "role<TAB>path<TAB>headers.json[<TAB>get]"
//
// With `get`, the page itself is the error state (a GET answering 422, such as a bad filter).
// A form's error state answers 422, which Lighthouse's navigation mode refuses to measure; so this
// opens the page in Chromium, empties the text fields of its largest POST form, submits it without
// the browser's own checks (as a browser without JavaScript would, and with nothing required typed),
// and measures the page the server answers with Lighthouse's snapshot mode, as a phone and as a
// desktop. Writes OUT_DIR/<role><path>-error-<form>.json and prints "role path status" per form.
// Run from a folder where `lighthouse` is installed (NODE_PATH is not read by ES modules).
import fs from 'node:fs';
import readline from 'node:readline';
import puppeteer from 'puppeteer-core';
import { snapshot } from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';

const [base, out] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: process.env.CHROME_PATH || '/usr/bin/chromium',
  args: ['--headless=new', '--no-sandbox'],
});
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const [role, path, headersFile, mode] = line.split('\t');
  const headers = JSON.parse(fs.readFileSync(headersFile, 'utf8'));
  const name = `${role}${path.replace(/[^a-zA-Z0-9]/g, '_')}-error`;
  for (const form of ['mobile', 'desktop']) {
    const page = await browser.newPage();
    // The session as a cookie of the page (Chromium does not send an extra Cookie header on a
    // form's POST).
    const cookies = (headers.Cookie || '').split('; ').filter(Boolean).map((c) => {
      const at = c.indexOf('=');
      return { name: c.slice(0, at), value: c.slice(at + 1), url: base };
    });
    if (cookies.length) await page.setCookie(...cookies);
    const first = await page.goto(base + path, { waitUntil: 'load' });
    const [response] = mode === 'get' ? [first] : await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.evaluate(() => {
        const fields = (f) =>
          [...f.elements].filter((e) =>
            (e.tagName === 'TEXTAREA' || (e.tagName === 'INPUT' &&
              ['text', 'email', 'password', 'number', 'date', 'datetime-local', 'search', ''].includes(e.getAttribute('type') || ''))) &&
            e.offsetParent !== null);
        const f = [...document.forms]
          .filter((f) => f.method === 'post')
          .sort((a, b) => fields(b).length - fields(a).length)[0];
        for (const e of fields(f)) e.value = '';
        f.noValidate = true;
        HTMLFormElement.prototype.submit.call(f);
      }),
    ]);
    const flags = { onlyCategories: ['accessibility'], formFactor: form };
    if (form === 'mobile') {
      flags.screenEmulation = { mobile: true, width: 412, height: 823, deviceScaleFactor: 1.75, disabled: false };
    }
    const result = await snapshot(page, {
      config: form === 'desktop' ? desktopConfig : undefined,
      flags,
    });
    fs.writeFileSync(`${out}/${name}-${form}.json`, JSON.stringify(result.lhr));
    console.log(`${role}\t${path}\t${form}\t${response.status()}\t${Math.round(result.lhr.categories.accessibility.score * 100)}`);
    await page.close();
  }
}
await browser.close();
