// The live player. FLV over a WebSocket through mpegts.js first (sub-second latency), hls.js in low-latency
// mode as the fallback, the browser's own HLS where there is no MSE (iOS Safari). A watchdog keeps it going:
// it skips over gaps a publisher reconnect leaves in the buffer, and rebuilds the pipeline when data stops,
// so a stream that resumes plays on without a page reload.

import mpegts from "mpegts.js";

export type PlayerMode = "flv" | "hls" | "native";
export type PlayerState = "connecting" | "playing" | "buffering" | "ended" | "failed";

export interface LiveSource {
  flv: string; // http(s) URL of /live/<id>.flv; the WebSocket URL is derived from it
  hls: string; // /live/<id>/index.m3u8
}

export interface PlayerEvents {
  onState?: (state: PlayerState, mode: PlayerMode | null) => void;
  /** The server closed the stream (publisher stopped): the page decides whether it is over. */
  onEnded?: () => void;
  /** play() was refused even muted: the page shows a play button. */
  onBlocked?: (blocked: boolean) => void;
}

interface Engine {
  destroy(): void;
}

const STALL_NUDGE_SECONDS = 2.5; // no progress for this long with data ahead: jump to it
const STALL_RESTART_SECONDS = 8; // no progress for this long: rebuild the pipeline
const FLV_FAILURES_BEFORE_HLS = 3;

mpegts.LoggingControl.applyConfig({ enableAll: false, enableError: false, enableWarn: false });

export function wsUrl(httpUrl: string): string {
  const url = new URL(httpUrl, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function nativeHls(video: HTMLVideoElement): boolean {
  return video.canPlayType("application/vnd.apple.mpegurl") !== "";
}

export class LivePlayer {
  private engine: Engine | null = null;
  private currentMode: PlayerMode | null = null;
  private watchdog = 0;
  private retryTimer = 0;
  private lastTime = -1;
  private lastProgress = 0;
  private flvFailures = 0;
  private restarts = 0;
  private running = false;
  private state: PlayerState = "connecting";
  private blocked = false;

  constructor(
    readonly video: HTMLVideoElement,
    private source: LiveSource,
    private events: PlayerEvents = {},
    private prefer: PlayerMode | null = null,
  ) {
    video.muted = true; // browsers allow muted autoplay; the page offers an unmute button
    video.playsInline = true;
    video.autoplay = true;
    video.addEventListener("playing", () => this.setBlocked(false));
  }

  get mode(): PlayerMode | null {
    return this.currentMode;
  }

  start(source: LiveSource = this.source): void {
    this.source = source;
    this.running = true;
    this.flvFailures = 0;
    this.restarts = 0;
    this.launch(this.firstMode());
    window.clearInterval(this.watchdog);
    this.watchdog = window.setInterval(() => this.check(), 1000);
  }

  stop(): void {
    this.running = false;
    window.clearInterval(this.watchdog);
    window.clearTimeout(this.retryTimer);
    this.teardown();
    this.setState("ended");
  }

  /** Try to start playback again after the browser refused autoplay (called from a click). */
  resume(): void {
    void this.play();
  }

  private firstMode(): PlayerMode {
    if (this.prefer === "hls" || this.prefer === "native") return this.prefer;
    if (mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback) return "flv";
    if (nativeHls(this.video)) return "native";
    return "hls";
  }

  private setState(state: PlayerState): void {
    if (state === this.state) return;
    this.state = state;
    this.video.dataset.state = state;
    this.events.onState?.(state, this.currentMode);
  }

  private setBlocked(blocked: boolean): void {
    if (blocked === this.blocked) return;
    this.blocked = blocked;
    this.events.onBlocked?.(blocked);
  }

  private teardown(): void {
    const engine = this.engine;
    this.engine = null;
    if (engine) {
      try {
        engine.destroy();
      } catch {
        // a half-built pipeline may throw while it is taken down; nothing is left to clean
      }
    }
    this.video.removeAttribute("src");
    this.video.load();
  }

  private launch(mode: PlayerMode): void {
    this.teardown();
    this.currentMode = mode;
    this.video.dataset.mode = mode;
    this.lastTime = -1;
    this.lastProgress = performance.now();
    this.setState("connecting");
    if (mode === "flv") this.launchFlv();
    else if (mode === "native") this.launchNative();
    else void this.launchHls();
  }

  private launchFlv(): void {
    const player = mpegts.createPlayer(
      { type: "flv", isLive: true, url: wsUrl(this.source.flv) },
      {
        isLive: true,
        enableWorker: false,
        enableStashBuffer: false, // hand every tag to MSE at once: latency over smoothness
        lazyLoad: false,
        // Glass-to-glass ≈ the buffer ahead of the picture + ~60 ms (docs/benchmarks.md), so the buffer is the
        // latency: play 1.2× past 0.35 s of buffer, back to 1× at 0.2 s (the band a settled viewer stays in);
        // 0.2 s still rides out the frame-arrival jitter of a busy machine without stalling.
        liveSync: true,
        liveSyncMaxLatency: 0.35,
        liveSyncTargetLatency: 0.2,
        liveSyncPlaybackRate: 1.2,
        liveBufferLatencyChasing: true,
        // A new viewer starts at the cached GOP (up to 2 s old), a background tab falls behind: past 0.6 s jump
        // to 0.2 s before the end at once rather than crawl back at 1.2×.
        liveBufferLatencyMaxLatency: 0.6,
        liveBufferLatencyMinRemain: 0.2,
        autoCleanupSourceBuffer: true,
        autoCleanupMaxBackwardDuration: 30,
        autoCleanupMinBackwardDuration: 10,
        fixAudioTimestampGap: true,
      },
    );
    const engine: Engine = { destroy: () => player.destroy() };
    this.engine = engine;
    player.on(mpegts.Events.ERROR, () => {
      if (this.engine !== engine) return;
      this.flvFailures += 1;
      this.retry();
    });
    player.on(mpegts.Events.LOADING_COMPLETE, () => {
      if (this.engine !== engine) return;
      this.events.onEnded?.();
    });
    player.attachMediaElement(this.video);
    player.load();
    void this.play();
  }

  private async launchHls(): Promise<void> {
    const { default: Hls } = await import("hls.js/light");
    if (!this.running || this.currentMode !== "hls") return;
    if (!Hls.isSupported()) {
      if (nativeHls(this.video)) this.launch("native");
      else this.setState("failed");
      return;
    }
    const hls = new Hls({
      lowLatencyMode: true,
      backBufferLength: 30,
      // No liveSyncDurationCount: it makes hls.js ignore the playlist's PART-HOLD-BACK (1.5 s) and sit two
      // whole segments (4 s) behind. Catching up a little faster keeps a late joiner near the edge
      // (docs/benchmarks.md, glass-to-glass: 4.3 s → ~1.6 s).
      maxLiveSyncPlaybackRate: 1.1,
      manifestLoadingMaxRetry: 6,
      levelLoadingMaxRetry: 6,
      fragLoadingMaxRetry: 6,
    });
    const engine: Engine = { destroy: () => hls.destroy() };
    this.engine = engine;
    let mediaRecoveries = 0;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (this.engine !== engine) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && data.response?.code === 404) {
        // The stream is gone (or this part left the live window): let the page check before hls.js retries.
        this.events.onEnded?.();
        return;
      }
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
        mediaRecoveries += 1;
        hls.recoverMediaError();
        return;
      }
      this.retry();
    });
    hls.loadSource(this.source.hls);
    hls.attachMedia(this.video);
    void this.play();
  }

  private launchNative(): void {
    const video = this.video;
    const onError = (): void => {
      if (this.currentMode === "native") this.retry();
    };
    video.addEventListener("error", onError, { once: true });
    this.engine = { destroy: () => video.removeEventListener("error", onError) };
    video.src = this.source.hls;
    void this.play();
  }

  private async play(): Promise<void> {
    try {
      await this.video.play();
      this.setBlocked(false);
    } catch (error) {
      // AbortError: a newer load() replaced this one; NotAllowedError: autoplay refused even muted.
      if (error instanceof DOMException && error.name === "NotAllowedError") this.setBlocked(true);
    }
  }

  /** Rebuild the pipeline after a short, growing pause; FLV that keeps failing gives way to HLS. */
  private retry(): void {
    if (!this.running) return;
    window.clearTimeout(this.retryTimer);
    this.teardown();
    this.setState("buffering");
    this.restarts += 1;
    let next: PlayerMode = this.currentMode ?? this.firstMode();
    if (next === "flv" && this.flvFailures >= FLV_FAILURES_BEFORE_HLS) next = nativeHls(this.video) ? "native" : "hls";
    const delay = Math.min(1000 * 2 ** Math.min(this.restarts - 1, 3), 8000);
    this.retryTimer = window.setTimeout(() => {
      if (this.running) this.launch(next);
    }, delay);
  }

  private check(): void {
    if (!this.running || !this.engine) return;
    const video = this.video;
    const now = performance.now();
    if (video.currentTime !== this.lastTime) {
      if (this.lastTime >= 0 && video.currentTime > this.lastTime) {
        this.restarts = 0;
        this.flvFailures = 0;
        this.setState("playing");
      }
      this.lastTime = video.currentTime;
      this.lastProgress = now;
      return;
    }
    // Autoplay refused: nothing plays until the viewer clicks. Paused otherwise: the viewer paused it (play()
    // clears `paused` at once, so a pipeline still waiting for its first frames is not mistaken for this).
    if (this.blocked || video.paused) {
      this.lastProgress = now;
      return;
    }
    const stalledFor = (now - this.lastProgress) / 1000;
    if (stalledFor >= STALL_NUDGE_SECONDS) {
      if (this.state === "playing") this.setState("buffering");
      const ahead = this.dataAhead();
      if (ahead !== null) {
        // A publisher reconnect can leave a hole in the buffer that the element will not cross on its own.
        video.currentTime = ahead;
        if (video.paused && !this.blocked) void this.play();
        this.lastProgress = now;
        return;
      }
    }
    if (stalledFor >= STALL_RESTART_SECONDS) this.retry();
  }

  /** Where playable data resumes after currentTime, if the buffer holds any. */
  private dataAhead(): number | null {
    const { buffered, currentTime } = this.video;
    for (let i = 0; i < buffered.length; i += 1) {
      const start = buffered.start(i);
      const end = buffered.end(i);
      if (start > currentTime + 0.05) return start + 0.05;
      if (end - currentTime > 0.6 && start <= currentTime) return Math.max(currentTime + 0.1, end - 0.4);
    }
    return null;
  }
}
