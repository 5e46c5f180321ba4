// The watch page /<AgentName>: live player, chat, viewer count, follow, token panel; offline state with the
// last thumbnail and the recordings. Live state is polled from /sessions/active/ (a 200 whether or not the
// agent is live) and pushed by Socket.IO's session_started.

import { apiOr, enc, type ActiveSession, type RecordedSession } from "./lib/api";
import { ChatPanel, followState, setFollowing } from "./lib/chat";
import { ClipButton } from "./lib/clip";
import { byId, el, maybeById, pageData, safeUrl, thumbnail } from "./lib/dom";
import {
  clock,
  compact,
  dateTime,
  plural,
  recordingTitle,
  timeAgo,
  viewers,
} from "./lib/format";
import { TokenMarket } from "./lib/market";
import { LivePlayer, type PlayerMode, type PlayerState } from "./lib/player";
import { initPage } from "./lib/page";
import { RaidBanner, type RaidEvent } from "./lib/raid";
import { TipPanel } from "./lib/tips";
import { TradePanel } from "./lib/trade";

interface Streamer {
  user_id: string;
  username: string;
  avatar_url: string;
  ticker: string;
  token_address: string;
  followers_count: number;
}

interface WatchData {
  now: string;
  streamer: Streamer;
  live: ActiveSession | null;
  last_thumbnail: string;
  recordings: RecordedSession[];
}

const POLL_MS = 5000;
const GRACE_MS = 90000; // longer than the server's reconnect grace (60 s by default)

const data = pageData<WatchData>();
const streamer = data.streamer;
const clockOffset = Date.parse(data.now) - Date.now(); // server time minus ours, for uptime
const root = byId("watch");
const video = byId<HTMLVideoElement>("video");
const playerBox = byId("player");
const offlineBox = byId("player-offline");
const statusBox = byId("player-status");
const unmute = byId<HTMLButtonElement>("unmute");
const muteToggle = byId<HTMLButtonElement>("mute-toggle");
const fullscreen = byId<HTMLButtonElement>("fullscreen");
const playBlocked = byId<HTMLButtonElement>("play-blocked");

let live: ActiveSession | null = data.live;
let pollTimer = 0;
let playerRunning = false;
let notLiveSince = 0;
let countedOnce = false;

function preferredMode(): PlayerMode | null {
  const wanted = new URLSearchParams(window.location.search).get("player");
  return wanted === "hls" || wanted === "native" || wanted === "flv" ? wanted : null;
}

const player = new LivePlayer(
  video,
  { flv: `/live/${enc(streamer.user_id)}.flv`, hls: `/live/${enc(streamer.user_id)}/index.m3u8` },
  {
    onState: (state: PlayerState) => {
      playerBox.dataset.playback = state;
      if (state === "playing" && !countedOnce) {
        // This page now counts as a viewer: show the count with us in it without waiting for the next poll.
        countedOnce = true;
        window.clearTimeout(pollTimer);
        pollTimer = window.setTimeout(() => void refreshLive(), 1200);
      }
      statusBox.textContent = state === "connecting" ? "Connecting…" : state === "buffering" ? "Reconnecting…" : "";
      statusBox.hidden = !(state === "connecting" || state === "buffering") || !live;
    },
    onEnded: () => {
      // The server closed the stream: the session ended (or this node lost it). Ask before going offline.
      playerRunning = false;
      player.stop();
      window.clearTimeout(pollTimer);
      pollTimer = window.setTimeout(() => void refreshLive(), 1000);
    },
    onBlocked: (blocked) => {
      playBlocked.hidden = !blocked;
    },
  },
  preferredMode(),
);

// -- player controls --------------------------------------------------------------------------------------

function syncMute(): void {
  const muted = video.muted || video.volume === 0;
  unmute.hidden = !muted || !live;
  muteToggle.dataset.muted = String(muted);
  muteToggle.setAttribute("aria-label", muted ? "Unmute" : "Mute");
  muteToggle.title = muted ? "Unmute" : "Mute";
}

unmute.addEventListener("click", () => {
  video.muted = false;
  if (video.volume === 0) video.volume = 1;
  player.resume();
});
muteToggle.addEventListener("click", () => {
  video.muted = !video.muted;
  if (!video.muted && video.volume === 0) video.volume = 1;
});
video.addEventListener("volumechange", syncMute);
playBlocked.addEventListener("click", () => {
  playBlocked.hidden = true;
  player.resume();
});
fullscreen.addEventListener("click", () => {
  if (document.fullscreenElement) void document.exitFullscreen();
  else if (playerBox.requestFullscreen) void playerBox.requestFullscreen().catch(() => undefined);
  else (video as HTMLVideoElement & { webkitEnterFullscreen?: () => void }).webkitEnterFullscreen?.();
});
playerBox.addEventListener("dblclick", () => fullscreen.click());

// -- live / offline ---------------------------------------------------------------------------------------

const chat = new ChatPanel({
  streamerId: streamer.user_id,
  streamerName: streamer.username,
  sessionId: live?.session_id ?? null,
  onSessionStarted: () => void refreshLive(),
  onFollowed: () => void refreshFollowers(),
});

// The streamer raids another agent: offer the move, then take this page there (lib/raid.ts).
const raidBanner = new RaidBanner(streamer.user_id);
chat.on<RaidEvent>("raid", (raid) => raidBanner.offer(raid));

const clipButton = new ClipButton(byId<HTMLButtonElement>("clip-button"), byId("clip-status"));
clipButton.setSession(live?.session_id ?? null);

function showLive(session: ActiveSession): void {
  live = session;
  root.dataset.live = "true";
  playerBox.dataset.live = "true";
  offlineBox.hidden = true;
  byId("live-badge").hidden = false;
  byId("offline-badge").hidden = true;
  byId("live-stats").hidden = false;
  byId("viewer-count").textContent = viewers(session.viewer_count);
  const title = maybeById("stream-title");
  if (title) title.textContent = session.title || `${streamer.username} is live`;
  chat.setSession(session.session_id);
  clipButton.setSession(session.session_id);
  if (!playerRunning) {
    playerRunning = true;
    player.start();
  }
  syncMute();
  tickUptime();
}

function showOffline(): void {
  const wasLive = root.dataset.live === "true";
  live = null;
  root.dataset.live = "false";
  playerBox.dataset.live = "false";
  playerRunning = false;
  player.stop();
  statusBox.hidden = true;
  unmute.hidden = true;
  playBlocked.hidden = true;
  offlineBox.hidden = false;
  byId("live-badge").hidden = true;
  byId("offline-badge").hidden = false;
  byId("live-stats").hidden = true;
  chat.setSession(null);
  clipButton.setSession(null);
  showLastLive(data.recordings[0]?.ended_at ?? null);
  if (wasLive) void refreshRecordings();
}

function showLastLive(endedAt: string | null): void {
  const title = maybeById("stream-title");
  if (title) title.textContent = endedAt ? `Last live ${timeAgo(endedAt)}` : "Has not streamed yet";
}

async function refreshLive(): Promise<void> {
  window.clearTimeout(pollTimer);
  const sessions = await apiOr<ActiveSession[] | null>("/sessions/active/", null);
  if (sessions !== null) {
    const mine = sessions.find((s) => s.streamer_id === streamer.user_id);
    if (mine) {
      notLiveSince = 0;
      showLive(mine);
    } else if (root.dataset.live === "true") {
      // A publisher that dropped keeps its session through the reconnect grace, and the server keeps this
      // player's connection open meanwhile: trust the player, which ends when the session does.
      notLiveSince = notLiveSince || Date.now();
      if (!playerRunning || Date.now() - notLiveSince > GRACE_MS || (await sessionEnded())) showOffline();
    }
  }
  pollTimer = window.setTimeout(() => void refreshLive(), POLL_MS);
}

/** The session we were playing is in the recorded list: it ended (not a publisher reconnecting). */
async function sessionEnded(): Promise<boolean> {
  const playing = live?.session_id;
  if (!playing) return true;
  const page = await apiOr<{ sessions: RecordedSession[] } | null>(
    `/sessions/recorded/${enc(streamer.user_id)}/?limit=1`,
    null,
  );
  return page?.sessions[0]?.session_id === playing;
}

function tickUptime(): void {
  const node = byId("uptime");
  if (!live || !live.started_at) {
    node.textContent = "";
    return;
  }
  const seconds = (Date.now() + clockOffset - Date.parse(live.started_at)) / 1000;
  node.textContent = clock(seconds);
}

// -- recordings -------------------------------------------------------------------------------------------

function recordingCard(item: RecordedSession): HTMLElement {
  const href = `/${enc(streamer.username)}/recordings/${enc(item.session_id)}`;
  const thumb = thumbnail(streamer.username, item.thumbnail_url || data.last_thumbnail);
  thumb.append(el("span", { class: "thumb-corner right", text: clock(item.duration_seconds) }));
  return el(
    "a",
    { class: "rec-card", attrs: { href } },
    thumb,
    el(
      "div",
      { class: "rec-meta" },
      el("span", { class: "rec-title", text: recordingTitle(item.title, streamer.username, item.ended_at) }),
      el(
        "span",
        { class: "muted" },
        dateTime(item.ended_at),
        item.peak_viewers ? ` · ${plural(item.peak_viewers, "viewer")} at peak` : "",
      ),
    ),
  );
}

function renderRecordings(items: RecordedSession[]): void {
  const list = byId("recordings-list");
  const playable = items.filter((item) => item.recording_url);
  byId("recordings-empty").hidden = playable.length > 0;
  byId("recordings-section").hidden = playable.length === 0 && live !== null;
  list.replaceChildren(...playable.slice(0, 8).map(recordingCard));
  const newest = items[0];
  if (newest?.thumbnail_url) setOfflinePicture(newest.thumbnail_url);
  if (!live && newest) showLastLive(newest.ended_at);
}

async function refreshRecordings(): Promise<void> {
  const page = await apiOr<{ sessions: RecordedSession[] } | null>(
    `/sessions/recorded/${enc(streamer.user_id)}/?limit=8`,
    null,
  );
  if (page) renderRecordings(page.sessions);
}

maybeById<HTMLImageElement>("offline-image")?.addEventListener("error", (event) => {
  (event.target as HTMLImageElement).hidden = true;
});

function setOfflinePicture(url: string): void {
  const img = maybeById<HTMLImageElement>("offline-image");
  const src = safeUrl(url);
  if (img && src && img.src !== src) {
    img.hidden = false;
    img.src = src;
  }
}

// -- follow -----------------------------------------------------------------------------------------------

const followButton = byId<HTMLButtonElement>("follow");
let following = false;

function renderFollow(count?: number): void {
  followButton.dataset.following = String(following);
  byId("follow-label").textContent = following ? "Following" : "Follow";
  if (count !== undefined) byId("followers").textContent = compact(count);
}

async function refreshFollowers(): Promise<void> {
  const meta = await apiOr<{ followers_count: number } | null>(`/users/metadata/${enc(streamer.user_id)}`, null);
  if (meta) renderFollow(meta.followers_count);
}

followButton.addEventListener("click", async () => {
  followButton.disabled = true;
  try {
    const answer = await setFollowing(streamer.user_id, !following);
    following = answer.following;
    renderFollow(answer.followers_count);
  } catch {
    // the button stays as it was; a later click tries again
  } finally {
    followButton.disabled = false;
  }
});

followState(streamer.username).then(
  (state) => {
    following = state;
    followButton.disabled = false;
    renderFollow();
  },
  () => {
    followButton.disabled = false;
  },
);

// -- token, trades and tips -------------------------------------------------------------------------------

function initEconomy(): void {
  new TipPanel(streamer.user_id, streamer.username, chat);
  const tipForm = byId("tip-form");
  const tradeForm = maybeById("trade-form");
  let trade: TradePanel | null = null;
  if (streamer.token_address && tradeForm) {
    const market = new TokenMarket(streamer.token_address, streamer.ticker, chat);
    trade = new TradePanel(streamer.token_address, streamer.ticker, market, chat);
    void market.start();
  }
  const pick = (side: string): void => {
    tipForm.hidden = side !== "tip";
    if (tradeForm) tradeForm.hidden = side === "tip";
    if (trade && (side === "buy" || side === "sell")) trade.setSide(side);
    byId("trade-panel").dataset.side = side;
  };
  for (const input of document.querySelectorAll<HTMLInputElement>('input[name="trade-side"]')) {
    input.addEventListener("change", () => input.checked && pick(input.value));
  }
  pick(document.querySelector<HTMLInputElement>('input[name="trade-side"]:checked')?.value ?? "tip");

}

// -- start ------------------------------------------------------------------------------------------------

initPage();
syncMute();
renderRecordings(data.recordings);
if (data.last_thumbnail) setOfflinePicture(data.last_thumbnail);
if (live) showLive(live);
else showOffline();
pollTimer = window.setTimeout(() => void refreshLive(), POLL_MS);
window.setInterval(tickUptime, 1000);
initEconomy();
