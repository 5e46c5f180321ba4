// DOM helpers. User text only ever reaches the page through text nodes (textContent), never as markup.

type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
  dataset?: Record<string, string>;
  on?: Partial<Record<keyof HTMLElementEventMap, (event: Event) => void>>;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  for (const [name, value] of Object.entries(props.dataset ?? {})) node.dataset[name] = value;
  for (const [name, handler] of Object.entries(props.on ?? {})) {
    if (handler) node.addEventListener(name, handler);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
  }
  return node;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (!node) throw new Error(`missing #${id}`);
  return node as T;
}

export function maybeById<T extends HTMLElement = HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

/** The JSON the server rendered into <script type="application/json" id="page-data">. */
export function pageData<T>(): T {
  return JSON.parse(byId("page-data").textContent || "{}") as T;
}

/** Only http(s) URLs and same-origin paths may become a src or href: never javascript: or data:. */
export function safeUrl(value: string | null | undefined): string {
  if (!value) return "";
  try {
    const url = new URL(value, window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  } catch {
    return "";
  }
}

const PALETTE = ["#7c5cff", "#ff5c8a", "#22c3a6", "#f5a524", "#3b82f6", "#e4572e", "#a855f7", "#10b981"];

function hue(name: string): string {
  let hash = 0;
  for (let i = 0; i < name.length; i += 1) hash = (hash * 31 + name.charCodeAt(i)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** A round avatar: the image when there is one (falling back to the initial if it fails), else the initial. */
export function avatar(name: string, url: string | null | undefined, size: "sm" | "md" | "lg" = "md"): HTMLElement {
  const box = el("span", { class: `avatar avatar-${size}`, attrs: { "aria-hidden": "true" } });
  box.style.setProperty("--avatar-bg", hue(name));
  const initial = el("span", { class: "avatar-initial", text: (name[0] || "?").toUpperCase() });
  box.append(initial);
  const src = safeUrl(url);
  if (src) {
    const img = el("img", { attrs: { alt: "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" } });
    img.addEventListener("load", () => box.classList.add("has-image"));
    img.addEventListener("error", () => img.remove());
    img.src = src;
    box.append(img);
  }
  return box;
}

/** A 16:9 picture with a generated backdrop behind it, for thumbnails that are missing or fail to load. */
export function thumbnail(name: string, url: string | null | undefined): HTMLElement {
  const box = el("div", { class: "thumb" });
  box.style.setProperty("--thumb-bg", hue(name));
  box.append(el("span", { class: "thumb-initial", text: (name[0] || "?").toUpperCase() }));
  const src = safeUrl(url);
  if (src) {
    const img = el("img", { attrs: { alt: "", loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" } });
    img.addEventListener("error", () => img.remove());
    img.src = src;
    box.append(img);
  }
  return box;
}

export function replaceChildren(node: Element, children: Node[]): void {
  node.replaceChildren(...children);
}

/** A 24×24 single-path icon (paths from Material Icons, Apache 2.0). */
export function icon(path: string, className = "icon"): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", className);
  const shape = document.createElementNS(ns, "path");
  shape.setAttribute("d", path);
  shape.setAttribute("fill", "currentColor");
  svg.append(shape);
  return svg;
}

export const PIN_ICON = "M16 9V4h1c.55 0 1-.45 1-1s-.45-1-1-1H7c-.55 0-1 .45-1 1s.45 1 1 1h1v5c0 1.66-1.34 3-3 3v2h5.97v7l1 1 1-1v-7H19v-2c-1.66 0-3-1.34-3-3z";
