// hls.js ships one declaration file; its light build has the same API minus features we do not use
// (subtitles, DRM, alternate audio).
declare module "hls.js/light" {
  export * from "hls.js";
  export { default } from "hls.js";
}
