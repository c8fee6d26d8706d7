// k6: the same open-model load as bench/arrival.lua, for bench/arrival-rate.sh.
import http from 'k6/http';
const body = '{"type":"funnel_enter","page":"website","session_id":"k6-journey-1-0-1795000000000","source":"k6-full-journey","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxx"}';
const url = __ENV.URL || 'http://127.0.0.1:18080/track';
const params = { headers: { 'Content-Type': 'application/json' } };
export const options = {
  scenarios: {
    open: {
      executor: 'constant-arrival-rate',
      rate: Number(__ENV.RATE || 20000),
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: 200,
      maxVUs: 2000,
    },
  },
};
export default function () {
  http.post(url, body, params);
}
