/**
 * A report page opened in headless Chromium (Debian's, fetched by `npm test`): a full-page
 * screenshot, and what went wrong on the way — page errors, console errors, dialogs — and every
 * request the page made (a self-contained page makes only its own).
 */
import * as path from "node:path";
import puppeteer, { type Page } from "puppeteer-core";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export interface OpenedPage {
  readonly tab: Page;
  readonly errors: readonly string[];
  readonly requests: readonly string[];
  /** The PNG screenshot's path. */
  readonly screenshot: string;
}

/** Open `file`, screenshot it next to it, run `inspect` on the open page, close the browser. */
export async function inChromium<T>(file: string, inspect: (page: OpenedPage) => Promise<T>): Promise<T> {
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const tab = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    tab.on("pageerror", (e) => errors.push(String(e)));
    tab.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    tab.on("request", (req) => requests.push(req.url()));
    tab.on("dialog", (d) => errors.push(`dialog: ${d.message()}`));
    await tab.setViewport({ width: 1400, height: 900 });
    await tab.goto(`file://${file}`, { waitUntil: "load" });
    const screenshot = path.join(path.dirname(file), `${path.basename(file, ".html")}.png`);
    await tab.screenshot({ path: screenshot, fullPage: true });
    return await inspect({ tab, errors, requests, screenshot });
  } finally {
    await browser.close();
  }
}
