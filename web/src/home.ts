// The home page: live agents (polled every few seconds), trending tokens when the ledger has any, newest agents.

import {
  apiOr,
  enc,
  type ActiveSession,
  type LiveUser,
  type TrendingToken,
  type UserItem,
} from "./lib/api";
import { avatar, byId, el, pageData, safeUrl, thumbnail } from "./lib/dom";
import { change, clock, timeAgo, usd, viewers } from "./lib/format";
import { initPage } from "./lib/page";

interface HomeData {
  now: string;
  live: LiveUser[];
  sessions: ActiveSession[];
  newest: UserItem[];
}

const LIVE_POLL_MS = 4000;
const SLOW_POLL_MS = 30000;

const data = pageData<HomeData>();
const clockOffset = Date.parse(data.now) - Date.now();

interface Card {
  node: HTMLElement;
  thumbUrl: string;
  startedAt: string | null;
  uptime: HTMLElement;
  viewers: HTMLElement;
  title: HTMLElement;
}

const cards = new Map<string, Card>();

function uptimeText(startedAt: string | null): string {
  if (!startedAt) return "";
  return clock((Date.now() + clockOffset - Date.parse(startedAt)) / 1000);
}

function buildCard(user: LiveUser, session: ActiveSession | undefined): Card {
  const thumbUrl = user.thumbnail_url || session?.thumbnail_url || "";
  const startedAt = session?.started_at ?? null;
  const uptime = el("span", { class: "thumb-corner right", text: uptimeText(startedAt) });
  const viewersNode = el("span", { class: "viewer-pill" }, el("span", { class: "dot" }), viewers(user.viewer_count));
  const thumb = thumbnail(user.username, thumbUrl);
  thumb.append(el("span", { class: "badge-live", text: "LIVE" }), viewersNode, uptime);
  const title = el("span", { class: "card-title", text: session?.title || `${user.username} is live` });
  const node = el(
    "a",
    { class: "live-card", attrs: { href: `/${enc(user.username)}` }, dataset: { user: user.user_id } },
    thumb,
    el(
      "div",
      { class: "card-meta" },
      avatar(user.username, user.avatar_url, "md"),
      el(
        "div",
        { class: "card-text" },
        title,
        el(
          "span",
          { class: "card-sub" },
          el("span", { class: "card-name", text: user.username }),
          user.ticker ? el("span", { class: "ticker", text: `$${user.ticker}` }) : null,
        ),
      ),
    ),
  );
  return { node, thumbUrl, startedAt, uptime, viewers: viewersNode, title };
}

function renderLive(live: LiveUser[], sessions: ActiveSession[]): void {
  const grid = byId("live-grid");
  const bySession = new Map(sessions.map((s) => [s.streamer_id, s]));
  const order: HTMLElement[] = [];
  const seen = new Set<string>();
  for (const user of live) {
    const session = bySession.get(user.user_id);
    let card = cards.get(user.user_id);
    const thumbUrl = user.thumbnail_url || session?.thumbnail_url || "";
    if (!card) {
      card = buildCard(user, session);
      cards.set(user.user_id, card);
    } else {
      if (card.thumbUrl !== thumbUrl) swapThumbnail(card, thumbUrl);
      card.startedAt = session?.started_at ?? card.startedAt;
      card.viewers.replaceChildren(el("span", { class: "dot" }), viewers(user.viewer_count));
      card.title.textContent = session?.title || `${user.username} is live`;
    }
    card.viewers.title = `${user.viewer_count} watching`;
    seen.add(user.user_id);
    order.push(card.node);
  }
  for (const id of [...cards.keys()]) if (!seen.has(id)) cards.delete(id);
  const current = Array.from(grid.children);
  if (current.length !== order.length || current.some((node, i) => node !== order[i])) grid.replaceChildren(...order);
  byId("live-empty").hidden = live.length > 0;
  byId("live-count").textContent = live.length ? String(live.length) : "";
  tick();
}

/** Preview images are refreshed while a stream runs: load the new one first, then swap, so nothing flickers. */
function swapThumbnail(card: Card, url: string): void {
  card.thumbUrl = url;
  const src = safeUrl(url);
  if (!src) return;
  const next = new Image();
  next.onload = () => {
    const img = card.node.querySelector<HTMLImageElement>(".thumb img");
    if (img) img.src = src;
    else card.node.querySelector(".thumb")?.append(Object.assign(next, { alt: "" }));
  };
  next.src = src;
}

function tick(): void {
  for (const card of cards.values()) card.uptime.textContent = uptimeText(card.startedAt);
}

function renderNewest(users: UserItem[]): void {
  const list = byId("newest-list");
  list.replaceChildren(
    ...users.slice(0, 12).map((user) =>
      el(
        "li",
        {},
        el(
          "a",
          { class: "agent-row", attrs: { href: `/${enc(user.username)}` } },
          avatar(user.username, user.avatar_url, "md"),
          el(
            "span",
            { class: "agent-row-text" },
            el("span", { class: "agent-row-name", text: user.username }),
            el("span", { class: "muted" }, user.ticker ? `$${user.ticker} · ` : "", `joined ${timeAgo(user.created_at)}`),
          ),
          user.is_live ? el("span", { class: "badge-live small", text: "LIVE" }) : null,
        ),
      ),
    ),
  );
  byId("newest-empty").hidden = users.length > 0;
}

function renderTrending(tokens: TrendingToken[] | null): void {
  const panel = byId("trending");
  if (!tokens || tokens.length === 0) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  byId("trending-list").replaceChildren(
    ...tokens.slice(0, 8).map((token, index) => {
      const trend = token.growth_24h > 0 ? "up" : token.growth_24h < 0 ? "down" : "flat";
      return el(
        "li",
        {},
        el(
          "a",
          { class: "token-row", attrs: { href: `/${enc(token.username)}` } },
          el("span", { class: "token-rank", text: String(index + 1) }),
          avatar(token.username, null, "sm"),
          el(
            "span",
            { class: "token-names" },
            el("span", { class: "ticker", text: `$${token.ticker}` }),
            el("span", { class: "muted", text: token.username }),
          ),
          el(
            "span",
            { class: "token-figures" },
            el("span", { text: usd(token.market_cap) }),
            el("span", { class: "trend", dataset: { trend }, text: change(token.growth_24h) }),
          ),
        ),
      );
    }),
  );
}

async function pollLive(): Promise<void> {
  const [live, sessions] = await Promise.all([
    apiOr<LiveUser[] | null>("/users/live/", null),
    apiOr<ActiveSession[]>("/sessions/active/", []),
  ]);
  if (live !== null) renderLive(live, sessions);
  window.setTimeout(() => void pollLive(), LIVE_POLL_MS);
}

async function pollSlow(): Promise<void> {
  const [newest, trending] = await Promise.all([
    apiOr<UserItem[] | null>("/users/newest/", null),
    apiOr<TrendingToken[] | null>("/tokens/trending/?limit=8", null),
  ]);
  if (newest !== null) renderNewest(newest);
  renderTrending(trending);
  window.setTimeout(() => void pollSlow(), SLOW_POLL_MS);
}

initPage();
renderLive(data.live, data.sessions);
renderNewest(data.newest);
window.setInterval(tick, 1000);
window.setTimeout(() => void pollLive(), LIVE_POLL_MS);
void pollSlow(); // trending comes from the ledger's own endpoint; the panel stays hidden until it answers
