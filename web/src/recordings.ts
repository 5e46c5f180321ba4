// Recordings: the list is rendered by the server; a recorded session plays its HLS VOD (hls.js, or the
// browser's own HLS on Safari).

import { byId, maybeById, pageData } from "./lib/dom";
import { initPage } from "./lib/page";

interface RecordingData {
  recording_url: string | null;
}

async function playRecording(video: HTMLVideoElement, url: string): Promise<void> {
  const { default: Hls } = await import("hls.js/light");
  if (Hls.isSupported()) {
    const hls = new Hls({ enableWorker: true, backBufferLength: 90 });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) window.setTimeout(() => hls.startLoad(), 1000);
      else byId("vod-error").hidden = false;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
  } else {
    byId("vod-error").hidden = false;
    return;
  }
  await autoplay(video);
}

/** Start at once: with sound when the browser allows it (the viewer clicked to get here), else muted. */
async function autoplay(video: HTMLVideoElement): Promise<void> {
  try {
    await video.play();
  } catch (error) {
    if (error instanceof DOMException && error.name === "NotAllowedError") {
      video.muted = true;
      await video.play().catch(() => undefined);
    }
  }
}

initPage();
const video = maybeById<HTMLVideoElement>("vod");
if (video) {
  const data = pageData<RecordingData>();
  if (data.recording_url) void playRecording(video, data.recording_url);
}
