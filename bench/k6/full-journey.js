// The k6 twin of lua/full-journey.lua, for bench/vs-k6.sh (teardown's integrity checks read
// the engine's own totals, so both sides run without teardown):
//   k6 run --no-teardown -e TIME_SCALE=30 -e VU_SCALE=0.2 -e TRACKING_URL=... bench/k6/full-journey.js
import * as cfg from "./lib/config.js";
import * as helpers from "./lib/journey-helpers.js";

const STAGES = [
  [120, 100], [300, 5000], [600, 10000], [60, 25000], [300, 25000], [120, 10000], [600, 10000], [180, 0],
];

export const options = {
  scenarios: {
    default: {
      executor: "ramping-vus",
      startVUs: 0,
      stages: STAGES.map(([secs, target]) => ({ duration: cfg.scaled(secs), target: Math.round(target * cfg.VU_SCALE) })),
      gracefulRampDown: cfg.scaled(30),
      gracefulStop: cfg.scaled(30),
    },
  },
  thresholds: helpers.JOURNEY_THRESHOLDS,
};

export function setup() {
  helpers.requireTargets();
}

export default function () {
  helpers.runJourney(cfg.DWELL_TIMES, cfg.SOURCES.JOURNEY);
}
