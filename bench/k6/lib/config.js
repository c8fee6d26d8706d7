// The k6 twin of lib/config.lua (the spec's lib/config.js), for bench/vs-k6.sh.
export const TRACKING_URL = __ENV.TRACKING_URL || "http://127.0.0.1:8787";
export const DASHBOARD_API_URL = __ENV.DASHBOARD_API_URL || "http://127.0.0.1:8787";
export const FUNNEL_STEPS = ["website", "tutorial", "webinar", "contract", "congrats", "brand-steps"];
export const DROP_OFF_RATES = {
  website: 0.4, tutorial: 0.3, webinar: 0.25, contract: 0.1, congrats: 0.05, "brand-steps": 0.0,
};
export const DWELL_TIMES = {
  website: { min: 5, max: 30 },
  tutorial: { min: 10, max: 60 },
  webinar: { min: 30, max: 120 },
  contract: { min: 5, max: 30 },
  congrats: { min: 2, max: 8 },
  "brand-steps": { min: 5, max: 60 },
};
export const BOUNCE_RATES = {
  website: 0.1, tutorial: 0.1, webinar: 0.2, contract: 0.05, congrats: 0.02, "brand-steps": 0.15,
};
export const MISSION_COMPLETION_RATE = 0.3;
export const HEARTBEAT_INTERVAL = 15;
export const SOURCES = { JOURNEY: "k6-full-journey" };

// The engine's --time-scale and --vu-scale, which k6 does not have: the twin applies them
// itself (every duration and sleep divided, every VU target multiplied).
export const TIME_SCALE = Number(__ENV.TIME_SCALE || "1");
export const VU_SCALE = Number(__ENV.VU_SCALE || "1");
export function scaled(seconds) {
  return `${Math.round((seconds * 1000) / TIME_SCALE)}ms`;
}
