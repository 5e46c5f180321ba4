// What every page does once: the header search, image fallbacks, local times.

import { initAccount } from "./account";
import { dateTime } from "./format";
import { initSearch } from "./search";

/** Server-rendered images marked data-fallback disappear when they fail, uncovering the initial behind them. */
function dropBrokenImages(): void {
  for (const img of document.querySelectorAll<HTMLImageElement>("img[data-fallback]")) {
    if (img.complete && img.naturalWidth === 0 && img.getAttribute("src")) img.remove();
    else img.addEventListener("error", () => img.remove(), { once: true });
  }
}

/** <time datetime="…"> rendered in UTC by the server, shown in the viewer's time zone. */
function localTimes(): void {
  for (const node of document.querySelectorAll<HTMLTimeElement>("time[datetime]")) {
    const text = dateTime(node.dateTime);
    if (text) node.textContent = text;
  }
}

export function initPage(): void {
  initSearch();
  initAccount();
  dropBrokenImages();
  localTimes();
}
