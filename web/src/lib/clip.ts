// The watch page's "Clip" button: the last 30 s of the live stream become an MP4 with its own page
// (POST /api/v1/sessions/:id/clips as the signed-in viewer; rate-limited by the server).

import { api, ApiError, enc } from "./api";
import { viewer } from "./identity";

const CLIP_SECONDS = 30;

interface ClipMade {
  clip_id: string;
  url: string;
}

export class ClipButton {
  private sessionId: string | null = null;

  constructor(
    private readonly button: HTMLButtonElement,
    private readonly status: HTMLElement,
  ) {
    button.addEventListener("click", () => void this.clip());
  }

  /** The live session to clip, or null while offline (the button hides). */
  setSession(sessionId: string | null): void {
    this.sessionId = sessionId;
    this.button.hidden = sessionId === null;
  }

  private say(text: string, link?: string): void {
    this.status.hidden = false;
    this.status.replaceChildren(text);
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link;
      anchor.id = "clip-link";
      anchor.textContent = "Open clip";
      this.status.append(" ", anchor);
    }
  }

  private async clip(): Promise<void> {
    const sessionId = this.sessionId;
    if (!sessionId) return;
    this.button.disabled = true;
    this.say("Clipping the last 30 seconds…");
    try {
      const { token } = await viewer();
      const made = await api<ClipMade>(`/sessions/${enc(sessionId)}/clips`, {
        method: "POST",
        token,
        body: { seconds: CLIP_SECONDS },
      });
      this.say("Clip ready.", `/clip/${enc(made.clip_id)}`);
    } catch (error) {
      this.say(error instanceof ApiError ? error.message : "Could not make the clip; try again.");
    } finally {
      this.button.disabled = false;
    }
  }
}
