-- wrk: POST a 150-byte JSON beacon on every request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"funnel_enter","page":"website","session_id":"k6-journey-1-0-1795000000000","source":"k6-full-journey","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxx"}'
