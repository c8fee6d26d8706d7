// The k6 twin of lib/journey-helpers.lua (the spec's lib/journey-helpers.js with the
// metrics the Lua port records inside sendBeacon), for bench/vs-k6.sh: the same requests,
// metrics and sleeps, line for line.
import http from "k6/http";
import { sleep as k6sleep } from "k6";
import exec from "k6/execution";
import { Counter, Rate, Trend } from "k6/metrics";
import * as cfg from "./config.js";

const sleep = (s) => k6sleep(s / cfg.TIME_SCALE);

const entrySuccess = new Rate("funnel_entry_success");
const exitSuccess = new Rate("funnel_exit_success");
const completeSuccess = new Rate("funnel_complete_success");
const heartbeatSuccess = new Rate("heartbeat_success");
const reenterSuccess = new Rate("funnel_reenter_success");
const reexitSuccess = new Rate("funnel_reexit_success");
const SUCCESS = {
  funnel_enter: entrySuccess, funnel_exit: exitSuccess, funnel_complete: completeSuccess,
  heartbeat: heartbeatSuccess, funnel_reenter: reenterSuccess, funnel_reexit: reexitSuccess,
};
const beaconLatency = new Trend("beacon_latency_ms");
const totalEntries = new Counter("total_entries");
const totalExits = new Counter("total_exits");
const totalBounces = new Counter("total_bounce_cycles");
const totalCompletes = new Counter("total_funnel_completes");
const totalMissionCompletes = new Counter("total_mission_completes");
const droppedUsers = new Counter("dropped_users");
const fullJourneyUsers = new Counter("full_journey_users");

export const JOURNEY_THRESHOLDS = {
  http_req_duration: ["p(95)<3000", "p(99)<5000"],
  http_req_failed: ["rate<0.01"],
  funnel_entry_success: ["rate>0.99"],
  funnel_exit_success: ["rate>0.99"],
  funnel_complete_success: ["rate>0.99"],
  beacon_latency_ms: ["p(95)<2000", "p(99)<5000"],
};

const HEADERS = { "Content-Type": "application/json", Origin: "https://k6-load-test.pages.dev" };

export function sendBeacon(type, page, sessionId, source, extraFields = {}) {
  const payload = JSON.stringify({ type, page, session_id: sessionId, source, ...extraFields });
  const res = http.post(`${cfg.TRACKING_URL}/track`, payload, { headers: HEADERS, timeout: "10s" });
  const ok = res.status >= 200 && res.status < 300;
  beaconLatency.add(res.timings.duration, { type });
  SUCCESS[type].add(ok, { page });
  return { ok, status: res.status, duration: res.timings.duration, body: res.body };
}

export function dwellOnPage(page, sessionId, source, minSec, maxSec) {
  const totalTime = minSec + Math.random() * (maxSec - minSec);
  let elapsed = 0;
  while (elapsed < totalTime) {
    const chunk = Math.min(cfg.HEARTBEAT_INTERVAL, totalTime - elapsed);
    sleep(chunk);
    elapsed += chunk;
    if (elapsed < totalTime) {
      sendBeacon("heartbeat", page, sessionId, source);
    }
  }
  return Math.round(totalTime * 1000);
}

export function simulateTabSwitch(page, sessionId, source, timeOnPageMs) {
  sendBeacon("funnel_exit", page, sessionId, source, { time_on_page: timeOnPageMs });
  sleep(5 + Math.random() * 25);
  sendBeacon("funnel_reenter", page, sessionId, source);
  const extraTime = 10 + Math.random() * 20;
  sleep(extraTime);
  return Math.round(extraTime * 1000);
}

export function runJourney(dwellTimes, source) {
  const sessionId = `k6-journey-${__VU}-${__ITER}-${Date.now()}`;
  for (const step of cfg.FUNNEL_STEPS) {
    sendBeacon("funnel_enter", step, sessionId, source);
    totalEntries.add(1);
    if (step === "brand-steps") fullJourneyUsers.add(1);
    const dwell = dwellTimes[step];
    let timeOnPage = dwellOnPage(step, sessionId, source, dwell.min, dwell.max);
    if (Math.random() < cfg.BOUNCE_RATES[step]) {
      timeOnPage += simulateTabSwitch(step, sessionId, source, timeOnPage);
      totalBounces.add(1);
    }
    const dropsHere = Math.random() < cfg.DROP_OFF_RATES[step];
    if (step === "congrats" && !dropsHere) {
      sendBeacon("funnel_complete", "congrats", sessionId, source);
      totalCompletes.add(1);
    }
    if (step === "brand-steps" && Math.random() < cfg.MISSION_COMPLETION_RATE) {
      sendBeacon("funnel_complete", "brand-steps", sessionId, source);
      totalMissionCompletes.add(1);
    }
    sendBeacon("funnel_exit", step, sessionId, source, { time_on_page: timeOnPage });
    totalExits.add(1);
    if (dropsHere) {
      droppedUsers.add(1);
      return false;
    }
  }
  return true;
}

export function requireTargets() {
  for (const [name, url] of [["TRACKING_URL", cfg.TRACKING_URL], ["DASHBOARD_API_URL", cfg.DASHBOARD_API_URL]]) {
    const res = http.get(`${url}/health`, { timeout: "3s", tags: { name: "health" } });
    if (res.status !== 200) exec.test.abort(`${name} ${url} does not answer GET /health`);
  }
}
