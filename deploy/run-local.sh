#!/usr/bin/env bash
# Start both services on embedded defaults (SQLite + a broker in a SQLite file): API, worker, beat.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var/log
export SMS_ENV=${SMS_ENV:-development} PAYMENT_ENV=${PAYMENT_ENV:-development}
# Result callbacks and forwards may go to receivers on this machine (127.0.0.1); production refuses them.
export SMS_CALLBACK_ALLOW_PRIVATE=${SMS_CALLBACK_ALLOW_PRIVATE:-true}
export PAYMENT_NOTIFY_ALLOW_PRIVATE=${PAYMENT_NOTIFY_ALLOW_PRIVATE:-true}

pids=()
stopped=0
stop() {  # Ctrl-C, a TERM, or the end of the script: stop every process, once
  trap - INT TERM EXIT
  [ "$stopped" = 1 ] && return
  stopped=1
  [ "${#pids[@]}" = 0 ] && return
  echo; echo "stopping..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "stopped"
}
trap stop INT TERM EXIT

first_key() {  # print (and on the first run create) a demo tenant's key for a service
  local app=$1 file=var/$1-first-tenant.json
  if [ ! -s "$file" ]; then
    (umask 077; "$BIN/flask" --app "$app" tenant create --name "本地演示租户" > "$file")
  fi
  "$BIN/python" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["api_key"])' "$file"
}

# Payments go to the local WeChat Pay / Alipay fakes unless real upstream URLs are set.
if [ -z "${PAYMENT_WECHATPAY_BASE_URL:-}${PAYMENT_ALIPAY_GATEWAY_URL:-}" ]; then
  export PAYMENT_WECHATPAY_BASE_URL=http://127.0.0.1:8601 PAYMENT_ALIPAY_GATEWAY_URL=http://127.0.0.1:8602/gateway.do
  sandbox_fakes=1
fi

for port in 8001 8002 ${sandbox_fakes:+8601 8602}; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use (an earlier 'make run' still running?); stop it first" >&2
    exit 1
  fi
done

for app in sms_service payment_service; do
  "$BIN/flask" --app "$app" db upgrade 2> "var/log/$app-migrate.log" ||
    { echo "migrating $app failed; see var/log/$app-migrate.log" >&2; exit 1; }
done

start() {  # name, command...
  local name=$1; shift
  "$@" >> "var/log/$name.log" 2>&1 &
  pids+=($!)
}
if [ -n "${sandbox_fakes:-}" ]; then
  start wechatpay-fake "$BIN/python" -m tests.fakes.wechatpay --port 8601 --allow-http-notify
  start alipay-fake "$BIN/python" -m tests.fakes.alipay --port 8602
fi
GUNICORN_WORKERS=${GUNICORN_WORKERS:-2}
export GUNICORN_WORKERS
start sms-api "$BIN/gunicorn" -c deploy/gunicorn.conf.py -b 127.0.0.1:8001 'sms_service:create_app()'
start sms-worker "$BIN/celery" -A sms_service.worker worker -P solo --loglevel INFO -n sms@%h
start sms-beat "$BIN/celery" -A sms_service.worker beat --loglevel INFO -s var/sms-beat-schedule
start payment-api "$BIN/gunicorn" -c deploy/gunicorn.conf.py -b 127.0.0.1:8002 'payment_service:create_app()'
start payment-worker "$BIN/celery" -A payment_service.worker worker -P solo --loglevel INFO -n payment@%h
start payment-beat "$BIN/celery" -A payment_service.worker beat --loglevel INFO -s var/payment-beat-schedule

for port in 8001 8002; do  # the banner below only once both APIs answer (a busy machine boots them slowly)
  for _ in $(seq 1 240); do
    "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=1)" 2>/dev/null && continue 2
    sleep 0.5
  done
  echo "nothing answers on 127.0.0.1:$port after 2 minutes; see var/log/" >&2
  exit 1
done

cat <<TXT

  SMS service      http://127.0.0.1:8001   docs: http://127.0.0.1:8001/docs
    API key        $(first_key sms_service)
  Payment service  http://127.0.0.1:8002   docs: http://127.0.0.1:8002/docs
    API key        $(first_key payment_service)

  Tenant details (callback/notify secrets): var/*-first-tenant.json   Logs: var/log/
  Payment sandbox: WeChat Pay fake on :8601, Alipay fake on :8602 (docs/payment-sandbox.md)
  Try: curl -H "X-Api-Key: <key>" http://127.0.0.1:8001/api/v1/sms/me
  Ctrl-C stops everything.
TXT
wait -n "${pids[@]}" || true
if [ "$stopped" = 0 ]; then  # nobody asked: one of the processes died by itself
  echo "a process exited unexpectedly; its log is under var/log/" >&2
  stop
  exit 1
fi
