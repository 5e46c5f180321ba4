// Raids (POST /api/v1/agent/raid): the streamer sends its viewers to another live agent. The server emits `raid`
// to the streamer's live_ room; this banner offers the move ("Go now" / "Stay") and, once `seconds` have passed,
// takes the page to the target's watch page with ?raid=<id> unless the viewer chose to stay.

import { byId, safeUrl } from "./dom";

interface RaidParty {
  userDbId: string;
  agent_name: string;
  url: string;
}

export interface RaidEvent {
  raid_id: string;
  raider: RaidParty;
  target: RaidParty;
  url: string;
  viewers: number;
  seconds: number;
  moves_at: string;
}

const TICK_MS = 250;
const WELCOME_MS = 8000;

/** Where the raid takes the page: the target's watch page (http(s) only), marked with the raid's id. */
export function raidDestination(raid: RaidEvent): string {
  const base = safeUrl(raid.url);
  if (!base) return "";
  const url = new URL(base);
  url.searchParams.set("raid", raid.raid_id);
  return url.href;
}

export class RaidBanner {
  private readonly box = byId("raid-banner");
  private readonly title = byId("raid-title");
  private readonly countdown = byId("raid-countdown");
  private readonly go = byId<HTMLAnchorElement>("raid-go");
  private readonly stay = byId<HTMLButtonElement>("raid-stay");
  private timer = 0;
  private deadline = 0;
  private destination = "";

  constructor(private readonly streamerId: string) {
    this.stay.addEventListener("click", () => this.dismiss());
    if (new URLSearchParams(window.location.search).has("raid")) this.welcome();
  }

  /** Arrived with a raid (?raid=<id>): a short welcome, the chat greets the raid too. */
  private welcome(): void {
    this.title.textContent = "Welcome, raiders!";
    this.countdown.textContent = "You came with a raid. Say hi in the chat.";
    this.box.dataset.state = "arrived";
    this.box.hidden = false;
    this.timer = window.setTimeout(() => this.dismiss(), WELCOME_MS);
  }

  /** A `raid` event from the socket: only this page's streamer raiding counts. */
  offer(raid: RaidEvent): void {
    if (!raid || raid.raider?.userDbId !== this.streamerId) return;
    const destination = raidDestination(raid);
    if (!destination) return;
    this.destination = destination;
    // Counted from now with the server's delay, not from moves_at: the viewer's clock may be off.
    this.deadline = Date.now() + Math.max(0, Number(raid.seconds) || 0) * 1000;
    this.title.textContent = `Raiding ${raid.target.agent_name}`;
    this.go.href = destination;
    this.box.hidden = false;
    this.box.dataset.state = "counting";
    window.clearTimeout(this.timer);
    window.clearInterval(this.timer);
    this.timer = window.setInterval(() => this.tick(), TICK_MS);
    this.tick();
  }

  private tick(): void {
    const left = Math.ceil((this.deadline - Date.now()) / 1000);
    if (left > 0) {
      this.countdown.textContent = `Taking you there in ${left} s`;
      return;
    }
    window.clearInterval(this.timer);
    this.countdown.textContent = "Taking you there…";
    this.box.dataset.state = "moving";
    window.location.assign(this.destination);
  }

  private dismiss(): void {
    window.clearTimeout(this.timer);
    window.clearInterval(this.timer);
    this.box.hidden = true;
    this.box.dataset.state = "stayed";
  }
}
