extension StatusPage {
    /// The page's script. Contract: it fetches data only from this sidecar's API (`/api/status`, `/api/backups`)
    /// with the token the operator typed, kept in the tab's sessionStorage and sent as `X-API-Token`; everything
    /// from the API enters the page as text (`textContent`, SVG attributes set one by one), never as markup: a
    /// backup's name or a step's detail is store data. A 401 forgets the token and every value shown.
    static let script = #"""
        'use strict';
        (function () {
          const TOKEN_KEY = 'contingency.apiToken';
          const REFRESH_SECONDS = 30;
          const DURATION_LIMIT_SECONDS = 300;
          const SVG_NS = 'http://www.w3.org/2000/svg';

          let refreshTimer = null;
          let retryTimer = null;
          let loading = false;
          // A load asked for while one runs (a token typed during a refresh) runs once that one ends.
          let again = false;

          const byId = (id) => document.getElementById(id);

          // ---- building the page, as text only ----

          function el(tag, className, text) {
            const node = document.createElement(tag);
            if (className) node.className = className;
            if (text !== undefined && text !== null) node.textContent = String(text);
            return node;
          }

          function svgEl(tag, attributes, text) {
            const node = document.createElementNS(SVG_NS, tag);
            for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, String(value));
            if (text !== undefined && text !== null) node.textContent = String(text);
            return node;
          }

          function pill(kind, text) { return el('span', 'pill ' + kind, text); }

          function stat(label, value, note, long) {
            const box = el('div', 'stat');
            box.append(el('span', 'label', label));
            const shown = el('span', long ? 'value long' : 'value');
            if (value instanceof Node) shown.append(value); else shown.textContent = value;
            box.append(shown);
            if (note) box.append(el('span', 'note', note));
            return box;
          }

          // ---- formats ----

          // As the API's sizeFormatted (BackupCore's ByteFormat): base 1024, at most one decimal.
          function formatBytes(bytes) {
            if (typeof bytes !== 'number' || !isFinite(bytes)) return 'n/a';
            const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
            let value = Math.abs(bytes);
            let unit = 0;
            while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
            const sign = bytes < 0 ? '-' : '';
            if (unit === 0) return sign + Math.round(value) + ' B';
            const tenths = Math.round(value * 10) / 10;
            return sign + (Number.isInteger(tenths) ? tenths.toFixed(0) : tenths.toFixed(1)) + ' ' + units[unit];
          }

          function formatSeconds(seconds) {
            if (typeof seconds !== 'number' || !isFinite(seconds)) return '—';
            if (seconds < 1) return Math.round(seconds * 1000) + ' ms';
            if (seconds < 60) return (Math.round(seconds * 10) / 10) + ' s';
            const minutes = Math.floor(seconds / 60);
            const rest = Math.round(seconds - minutes * 60);
            if (minutes < 60) return minutes + ' min' + (rest ? ' ' + rest + ' s' : '');
            return Math.floor(minutes / 60) + ' h ' + (minutes % 60) + ' min';
          }

          // A round top for a chart's scale: 1, 2, 2.5 or 5 times a power of ten of the unit the values are shown
          // in (bytes: powers of 1024, as formatBytes; seconds: the steps of a clock).
          function niceBytes(value) {
            let unit = 1;
            while (value >= 1024 * unit && unit < Math.pow(1024, 6)) unit *= 1024;
            return niceNumber(value / unit) * unit;
          }

          function niceNumber(value) {
            if (!(value > 0)) return 1;
            const power = Math.pow(10, Math.floor(Math.log10(value)));
            for (const step of [1, 2, 2.5, 5, 10]) {
              if (value <= step * power) return step * power;
            }
            return 10 * power;
          }

          function niceSeconds(value) {
            if (value < 60) return niceNumber(value);
            for (const step of [60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 14400, 28800, 86400]) {
              if (value <= step) return step;
            }
            return Math.ceil(value / 86400) * 86400;
          }

          // A backup's duration: its manifest records times to the second.
          function backupDuration(seconds) {
            if (typeof seconds !== 'number') return '—';
            return seconds < 1 ? 'under 1 s' : formatSeconds(seconds);
          }

          function parseTime(text) {
            const time = Date.parse(text);
            return isNaN(time) ? null : time;
          }

          // 2025-01-15 14:30:00 UTC: the backups' names are in UTC, so is the page.
          function formatTime(text) {
            const time = parseTime(text);
            return time === null ? '—' : new Date(time).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
          }

          // 2025-01-15 14:30 (UTC, said by the column or the label).
          function minuteTime(text) {
            const time = parseTime(text);
            return time === null ? '—' : new Date(time).toISOString().slice(0, 16).replace('T', ' ');
          }

          function shortTime(time) {
            return new Date(time).toISOString().slice(5, 16).replace('T', ' ');
          }

          function ago(text) {
            const time = parseTime(text);
            if (time === null) return '';
            const seconds = Math.max(0, Math.round((Date.now() - time) / 1000));
            if (seconds < 60) return seconds + ' s ago';
            if (seconds < 3600) return Math.floor(seconds / 60) + ' min ago';
            if (seconds < 86400) return Math.floor(seconds / 3600) + ' h ago';
            return Math.floor(seconds / 86400) + ' d ago';
          }

          // ---- the API ----

          class APIError extends Error {
            constructor(status, message, retryAfter) {
              super(message || ('HTTP ' + status));
              this.status = status;
              this.retryAfter = retryAfter;
            }
          }

          async function getJSON(path, token) {
            let response;
            try {
              response = await fetch(path, {
                headers: { 'X-API-Token': token, 'Accept': 'application/json' },
                cache: 'no-store', credentials: 'omit', redirect: 'error',
              });
            } catch (error) {
              throw new APIError(0, 'the sidecar does not answer (' + error.message + ')');
            }
            let body = null;
            try { body = await response.json(); } catch (error) { body = null; }
            if (!response.ok || !body || body.success !== true) {
              const retryAfter = parseInt(response.headers.get('Retry-After') || '', 10);
              throw new APIError(response.status, body && body.error, isNaN(retryAfter) ? null : retryAfter);
            }
            return body;
          }

          // ---- messages and states ----

          function showMessage(kind, title, text) {
            const box = byId('message');
            box.className = 'message ' + kind;
            box.replaceChildren(el('strong', null, title));
            if (text) box.append(el('span', null, text));
            box.hidden = false;
          }

          function hideMessage() {
            const box = byId('message');
            box.hidden = true;
            box.replaceChildren();
          }

          function setState(state) { document.body.dataset.state = state; }

          function signedOut() {
            clearInterval(refreshTimer);
            refreshTimer = null;
            byId('token-form').hidden = false;
            byId('signed-in').hidden = true;
            byId('intro').hidden = false;
          }

          function signedIn() {
            byId('token-form').hidden = true;
            byId('signed-in').hidden = false;
            byId('intro').hidden = true;
            byId('content').hidden = false;
            if (refreshTimer === null) refreshTimer = setInterval(load, REFRESH_SECONDS * 1000);
          }

          // Every value shown goes: nothing of the store stays in the page without a valid token.
          function clearData() {
            byId('content').hidden = true;
            for (const id of ['health', 'health-url', 'probe-summary', 'probes', 'probes-first', 'probes-last',
              'check-size', 'chart-size', 'check-duration', 'chart-duration', 'check-disk', 'chart-disk',
              'backup-count', 'backup-rows', 'rollback-id', 'rollback', 'refreshed']) {
              byId(id).replaceChildren();
            }
          }

          function failed(error) {
            const status = error instanceof APIError ? error.status : 0;
            if (status === 401) {
              sessionStorage.removeItem(TOKEN_KEY);
              clearData();
              signedOut();
              setState('unauthorized');
              showMessage('error', 'Wrong API token (401)',
                'The sidecar refused it: the token is wrong or missing. Give the value of API_ADMIN_TOKEN ' +
                '(or of the file API_ADMIN_TOKEN_FILE names) as set on the sidecar.');
            } else if (status === 503 && /^API disabled/.test(error.message)) {
              sessionStorage.removeItem(TOKEN_KEY);
              clearData();
              signedOut();
              setState('disabled');
              showMessage('error', 'The admin API is disabled (503)',
                'The sidecar was started without API_ADMIN_TOKEN, so it answers no API request and this page ' +
                'has nothing to show. Set API_ADMIN_TOKEN (or API_ADMIN_TOKEN_FILE) in the sidecar\'s ' +
                'environment and restart it; "openssl rand -hex 32" makes a token.');
            } else if (status === 429) {
              const wait = error.retryAfter === null ? REFRESH_SECONDS : error.retryAfter;
              setState('throttled');
              showMessage('warning', 'Too many wrong tokens (429)',
                'The sidecar holds this address back after repeated wrong tokens. Try again in ' + wait + ' s.');
              clearTimeout(retryTimer);
              retryTimer = setTimeout(() => {
                if (sessionStorage.getItem(TOKEN_KEY)) load(); else hideMessage();
              }, wait * 1000);
            } else {
              setState('error');
              const title = status ? 'The API answered ' + status : 'The sidecar does not answer';
              showMessage('error', title, error.message + '. The values shown (if any) are from the last refresh.');
            }
          }

          // ---- loading ----

          async function load() {
            const token = sessionStorage.getItem(TOKEN_KEY);
            if (!token) { signedOut(); setState('signed-out'); return; }
            if (loading) { again = true; return; }
            loading = true;
            setState('loading');
            try {
              // One after the other: a wrong token costs one attempt against the sidecar's brake, not two.
              const status = await getJSON('/api/status', token);
              const list = await getJSON('/api/backups', token);
              render(status, list);
              signedIn();
              if (status.problems && status.problems.length) {
                showMessage('warning', 'Part of the status could not be read', status.problems.join('; ') + '.');
              } else {
                hideMessage();
              }
              setState('loaded');
            } catch (error) {
              failed(error);
            } finally {
              loading = false;
              if (again) { again = false; load(); }
            }
          }

          function render(status, list) {
            const backups = Array.isArray(list.backups) ? list.backups : [];
            renderHealth(status);
            renderProbes(status.probes || [], status.probeHistoryLimit || 100);
            renderWatch(backups, status.disk || {});
            renderBackups(backups);
            renderRollback(status.lastRollback || null);
            byId('refreshed').textContent = 'Updated ' + formatTime(status.timestamp);
          }

          // ---- the application's health ----

          function renderHealth(status) {
            const app = status.app || {};
            const states = {
              healthy: pill('ok', 'Healthy'), unhealthy: pill('bad', 'Unhealthy'),
              unknown: pill('none', 'Not probed yet'),
            };
            const failures = app.consecutiveFailures || 0;
            byId('health-url').textContent = app.url || '';
            byId('health').replaceChildren(
              stat('Now', states[app.state] || states.unknown,
                app.incident ? 'incident: rollback ' + app.incident : null),
              stat('Last probe', app.lastProbe ? ago(app.lastProbe) : '—', formatTime(app.lastProbe)),
              stat('Failures in a row', failures + ' / ' + app.failureThreshold,
                failures >= app.failureThreshold ? 'threshold reached: a rollback is requested' : 'a rollback at ' +
                app.failureThreshold),
              stat('Last healthy', app.lastHealthy ? ago(app.lastHealthy) : 'never seen',
                app.lastHealthy ? formatTime(app.lastHealthy) : null),
              stat('Probed every', formatSeconds(app.intervalSeconds), 'by sidecar ' + (status.sidecar || '')),
            );
          }

          function renderProbes(probes, limit) {
            const width = limit * 6;
            const chart = svgEl('svg', {
              viewBox: '0 0 ' + width + ' 40', preserveAspectRatio: 'none', role: 'img',
              'aria-label': 'The last ' + probes.length + ' probes, oldest on the left', 'data-chart': 'probes',
            });
            const offset = limit - probes.length;
            for (let slot = 0; slot < offset; slot += 1) {
              chart.append(svgEl('rect', { class: 'slot', x: slot * 6, y: 8, width: 4, height: 32 }));
            }
            probes.forEach((probe, index) => {
              const bar = svgEl('rect', {
                class: 'probe ' + (probe.healthy ? 'healthy' : 'unhealthy'), x: (offset + index) * 6,
                y: probe.healthy ? 8 : 0, width: 4, height: probe.healthy ? 32 : 40,
              });
              const result = probe.healthy ? 'HTTP 200' : (probe.error || ('HTTP ' + probe.status));
              bar.append(svgEl('title', {}, formatTime(probe.at) + ': ' + result + ' in ' +
                formatSeconds(probe.durationSeconds)));
              chart.append(bar);
            });
            byId('probes').replaceChildren(chart);
            const healthy = probes.filter((probe) => probe.healthy).length;
            const durations = probes.map((probe) => probe.durationSeconds).sort((a, b) => a - b);
            const median = durations.length ? durations[Math.floor(durations.length / 2)] : null;
            const lastFailure = probes.filter((probe) => !probe.healthy).pop();
            byId('probe-summary').textContent = probes.length
              ? healthy + ' of ' + probes.length + ' healthy · median answer ' + formatSeconds(median) +
                (lastFailure ? ' · last failure ' + formatTime(lastFailure.at) : '')
              : 'no probe yet since the sidecar started';
            byId('probes-first').textContent = probes.length ? formatTime(probes[0].at) : '';
            byId('probes-last').textContent = probes.length ? formatTime(probes[probes.length - 1].at) : '';
          }

          // ---- the runbook's watch list ----

          function renderWatch(backups, disk) {
            const inTime = backups.map((backup) => ({ backup, time: parseTime(backup.created) }))
              .filter((entry) => entry.time !== null).sort((a, b) => a.time - b.time);
            const ordinary = inTime.filter((entry) => entry.backup.kind !== 'safety');

            const sizes = inTime.map((entry) => ({
              time: entry.time, value: entry.backup.size, name: entry.backup.filename,
              safety: entry.backup.kind === 'safety',
              text: entry.backup.sizeFormatted || formatBytes(entry.backup.size),
            }));
            byId('chart-size').replaceChildren(
              lineChart('size', sizes, { format: formatBytes, nice: niceBytes, empty: 'No backup yet' }));
            const last = ordinary[ordinary.length - 1];
            const previous = ordinary[ordinary.length - 2];
            if (!last) {
              check('check-size', 'none', 'No backup yet');
            } else if (!previous) {
              check('check-size', 'ok', 'One backup: ' + formatBytes(last.backup.size));
            } else {
              // Under half the one before is the BackupShrank alert's line; a shrink of a percent or more is worth
              // a look; less is the same data compressed a little differently.
              const sizes = formatBytes(last.backup.size) + ', was ' + formatBytes(previous.backup.size);
              const ratio = last.backup.size / Math.max(previous.backup.size, 1);
              if (ratio < 0.5) {
                check('check-size', 'bad', '✗ Less than half the one before: ' + sizes);
              } else if (ratio < 0.99) {
                check('check-size', 'warn', '⚠ Smaller than the one before by ' + Math.round(100 * (1 - ratio)) +
                  ' %: ' + sizes);
              } else if (ratio > 1.01) {
                check('check-size', 'ok', '✓ Growing: ' + sizes);
              } else {
                check('check-size', 'ok', '✓ Steady: ' + sizes);
              }
            }

            const timedAll = inTime.filter((entry) => typeof entry.backup.durationSeconds === 'number');
            const durations = timedAll.map((entry) => ({
              time: entry.time, value: entry.backup.durationSeconds, name: entry.backup.filename,
              safety: entry.backup.kind === 'safety', over: entry.backup.durationSeconds > DURATION_LIMIT_SECONDS,
              text: backupDuration(entry.backup.durationSeconds),
            }));
            byId('chart-duration').replaceChildren(lineChart('duration', durations, {
              format: formatSeconds, nice: niceSeconds, limit: DURATION_LIMIT_SECONDS, limitLabel: '5 min',
              empty: 'No duration recorded yet',
            }));
            const timed = ordinary.filter((entry) => typeof entry.backup.durationSeconds === 'number');
            const lastTimed = timed[timed.length - 1];
            if (!lastTimed) {
              check('check-duration', 'none', 'No duration recorded yet');
            } else if (lastTimed.backup.durationSeconds <= DURATION_LIMIT_SECONDS) {
              check('check-duration', 'ok', '✓ Last took ' + backupDuration(lastTimed.backup.durationSeconds) +
                ' (limit 5 min)');
            } else {
              check('check-duration', 'bad', '✗ Last took ' + formatSeconds(lastTimed.backup.durationSeconds) +
                ', over the 5 min limit');
            }

            byId('chart-disk').replaceChildren(diskChart(disk));
            if (typeof disk.freeBytes !== 'number') {
              check('check-disk', 'none', disk.store === 'bucket' ? 'The store is a bucket: no free space to watch'
                : 'The free space cannot be read');
            } else if (typeof disk.neededBytes !== 'number') {
              check('check-disk', 'ok', formatBytes(disk.freeBytes) + ' free; no backup to compare with yet');
            } else if (disk.enough) {
              check('check-disk', 'ok', '✓ ' + formatBytes(disk.freeBytes) + ' free, at least twice the last backup');
            } else {
              check('check-disk', 'bad', '✗ Only ' + formatBytes(disk.freeBytes) +
                ' free: twice the last backup is ' + formatBytes(disk.neededBytes));
            }
          }

          function check(id, kind, text) {
            const box = byId(id);
            box.className = 'check ' + kind;
            box.textContent = text;
          }

          // A line with one point per value over time, from zero up; `limit` draws the runbook's threshold when
          // it is within the values' range (and says it is above them otherwise).
          function lineChart(name, points, options) {
            const width = 360;
            const height = 170;
            const left = 58;
            const right = 14;
            const top = 12;
            const bottom = 26;
            const chart = svgEl('svg', {
              viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'data-chart': name, 'data-points': points.length,
              'aria-label': name + ' per backup over time',
            });
            if (!points.length) {
              chart.append(svgEl('text', { class: 'note', x: width / 2, y: height / 2, 'text-anchor': 'middle' },
                options.empty));
              return chart;
            }
            const maximum = Math.max(...points.map((point) => point.value));
            const showLimit = options.limit !== undefined && options.limit <= maximum * 1.5;
            const ceiling = options.nice(Math.max(maximum * 1.1, showLimit ? options.limit * 1.05 : 0)) || 1;
            const first = points[0].time;
            const span = points[points.length - 1].time - first;
            const x = (time) => span > 0 ? left + (time - first) / span * (width - left - right)
              : left + (width - left - right) / 2;
            const y = (value) => top + (1 - value / ceiling) * (height - top - bottom);
            for (const fraction of [0, 0.5, 1]) {
              const level = y(ceiling * fraction);
              chart.append(svgEl('line', { class: 'grid', x1: left, x2: width - right, y1: level, y2: level }));
              chart.append(svgEl('text', { class: 'axis-label', x: left - 6, y: level + 4, 'text-anchor': 'end' },
                options.format(ceiling * fraction)));
            }
            chart.append(svgEl('text', { class: 'axis-label', x: left, y: height - 6 }, shortTime(first)));
            if (span > 0) {
              chart.append(svgEl('text', { class: 'axis-label', x: width - right, y: height - 6, 'text-anchor': 'end' },
                shortTime(points[points.length - 1].time)));
            }
            if (showLimit) {
              const level = y(options.limit);
              chart.append(svgEl('line', { class: 'limit', x1: left, x2: width - right, y1: level, y2: level }));
              chart.append(svgEl('text', { class: 'limit-label', x: width - right, y: level - 4, 'text-anchor': 'end' },
                options.limitLabel));
            } else if (options.limit !== undefined) {
              chart.append(svgEl('text', { class: 'limit-label', x: width - right, y: top + 4, 'text-anchor': 'end' },
                'limit ' + options.limitLabel + ': far above'));
            }
            if (points.length > 1) {
              const path = points.map((point, index) => (index ? 'L' : 'M') + x(point.time).toFixed(1) + ' ' +
                y(point.value).toFixed(1)).join(' ');
              chart.append(svgEl('path', { class: 'series', d: path }));
            }
            for (const point of points) {
              const classes = ['point'];
              if (point.safety) classes.push('safety');
              if (point.over) classes.push('over');
              const dot = svgEl('circle', {
                class: classes.join(' '), cx: x(point.time).toFixed(1), cy: y(point.value).toFixed(1), r: 4.5,
              });
              dot.append(svgEl('title', {}, point.name + ': ' + point.text));
              chart.append(dot);
            }
            return chart;
          }

          // Free bytes on the volume against twice the last backup, on one scale.
          function diskChart(disk) {
            const width = 360;
            const height = 170;
            const chart = svgEl('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'data-chart': 'disk',
              'aria-label': 'free disk against twice the last backup' });
            if (typeof disk.freeBytes !== 'number') {
              chart.append(svgEl('text', { class: 'note', x: width / 2, y: height / 2, 'text-anchor': 'middle' },
                disk.store === 'bucket' ? 'A bucket has no free space to show' : 'Free space unknown'));
              return chart;
            }
            const needed = typeof disk.neededBytes === 'number' ? disk.neededBytes : 0;
            const scale = Math.max(disk.freeBytes, needed, 1);
            const bars = [
              { label: 'Free on the volume', value: disk.freeBytes,
                class: 'bar free ' + (disk.enough === false ? 'bad' : 'ok') },
              { label: 'Twice the last backup', value: needed, class: 'bar needed',
                note: disk.lastBackup ? null : 'no backup yet' },
            ];
            bars.forEach((bar, index) => {
              const top = 18 + index * 70;
              chart.append(svgEl('text', { class: 'bar-label', x: 0, y: top }, bar.label));
              chart.append(svgEl('text', { class: 'bar-value', x: width, y: top, 'text-anchor': 'end' },
                bar.note || formatBytes(bar.value)));
              chart.append(svgEl('rect', { class: 'bar-track', x: 0, y: top + 8, width: width, height: 22, rx: 4 }));
              const length = bar.value > 0 ? Math.max(3, bar.value / scale * width) : 0;
              chart.append(svgEl('rect', { class: bar.class, x: 0, y: top + 8, width: length.toFixed(1), height: 22,
                rx: 4, 'data-bytes': bar.value }));
            });
            return chart;
          }

          // ---- the backups ----

          function renderBackups(backups) {
            byId('backup-count').textContent = backups.length + (backups.length === 1 ? ' backup' : ' backups') +
              ', newest first';
            byId('backups-empty').hidden = backups.length > 0;
            byId('backups').hidden = backups.length === 0;
            const rows = backups.map((backup) => {
              const row = el('tr', 'backup');
              const name = el('td', 'name');
              name.append(el('span', 'filename', backup.filename));
              const tags = el('span', 'tags');
              if (backup.kind && backup.kind !== 'backup') tags.append(pill('warn', backup.kind));
              if (backup.label) tags.append(pill('none', backup.label));
              if (backup.pinned) tags.append(pill('none', 'pinned'));
              if (tags.childNodes.length) name.append(tags);
              row.append(name);

              const created = el('td', 'nowrap', formatTime(backup.created).replace(' UTC', ''));
              created.append(el('span', 'sub', backup.age ? backup.age + ' ago' : ''));
              row.append(created);
              row.append(el('td', 'num size', backup.sizeFormatted || formatBytes(backup.size)));
              const duration = el('td', 'num duration', backupDuration(backup.durationSeconds));
              if (backup.durationSeconds > DURATION_LIMIT_SECONDS) duration.append(el('span', 'sub', 'over 5 min'));
              row.append(duration);

              const verified = el('td', 'verified');
              if (!backup.verified) {
                verified.append(pill('none', 'never'));
              } else {
                verified.append(pill(backup.verified.ok ? 'ok' : 'bad', backup.verified.ok ? 'passed' : 'failed'));
                verified.append(el('span', 'sub', minuteTime(backup.verified.at)));
                if (backup.verified.detail) verified.title = backup.verified.detail;
              }
              row.append(verified);

              const encrypted = el('td', 'encrypted');
              encrypted.append(backup.encrypted ? pill('ok', 'encrypted') : pill('none', 'no'));
              row.append(encrypted);

              const signature = el('td', 'signature');
              const verdicts = {
                genuine: ['ok', 'genuine'], unsigned: ['warn', 'unsigned'], notGenuine: ['bad', 'not genuine'],
              };
              const verdict = verdicts[backup.authenticity] || (backup.signed ? ['none', 'signed, not checked']
                : ['none', 'unsigned']);
              signature.append(pill(verdict[0], verdict[1]));
              if (backup.authenticityDetail) signature.title = backup.authenticityDetail;
              row.append(signature);
              row.append(el('td', 'stores', (backup.stores || []).join(', ')));
              return row;
            });
            byId('backup-rows').replaceChildren(...rows);
          }

          // ---- the last rollback ----

          function renderRollback(request) {
            const box = byId('rollback');
            byId('rollback-id').textContent = request ? request.id : '';
            if (!request) {
              box.replaceChildren(el('p', 'empty', 'No rollback has been requested in this store.'));
              return;
            }
            const kinds = { succeeded: 'ok', failed: 'bad', running: 'warn', pending: 'warn' };
            const summary = el('div', 'rollback-summary');
            summary.append(
              stat('Status', pill(kinds[request.status] || 'none', request.status)),
              stat('Requested', ago(request.created), formatTime(request.created) + ' by ' + request.requestedBy),
              stat('Restored', request.target || request.backup || 'not chosen yet',
                request.worker ? 'by ' + request.worker : null, true),
              stat('Last change', ago(request.updated), formatTime(request.updated)),
            );
            const parts = [summary];
            if (request.reason) parts.push(el('p', 'reason', request.reason));
            const steps = request.steps || [];
            if (steps.length) {
              const table = el('table', 'table steps');
              const head = el('tr');
              for (const title of ['Step', 'Status', 'Started (UTC)', 'Took', 'Detail']) {
                const cell = el('th', title === 'Took' ? 'num' : null, title);
                cell.scope = 'col';
                head.append(cell);
              }
              const thead = el('thead');
              thead.append(head);
              const tbody = el('tbody');
              for (const step of steps) {
                const row = el('tr', 'step');
                row.append(el('td', null, step.name));
                const state = el('td');
                state.append(pill(kinds[step.status] || 'none', step.status));
                row.append(state);
                row.append(el('td', 'nowrap', formatTime(step.started).replace(' UTC', '')));
                const took = step.ended ? (parseTime(step.ended) - parseTime(step.started)) / 1000 : null;
                row.append(el('td', 'num', took === null ? 'running' : formatSeconds(took)));
                row.append(el('td', 'detail', step.detail || ''));
                tbody.append(row);
              }
              table.append(thead, tbody);
              const wrap = el('div', 'table-wrap');
              wrap.append(table);
              parts.push(wrap);
            } else {
              parts.push(el('p', 'empty', 'No step has run yet.'));
            }
            box.replaceChildren(...parts);
          }

          // ---- start ----

          function start() {
            byId('token-form').addEventListener('submit', (event) => {
              event.preventDefault();
              const input = byId('token');
              const token = input.value.trim();
              input.value = '';
              if (!token) return;
              // A header carries visible ASCII only; API_ADMIN_TOKEN is such (openssl rand -hex 32).
              if (/[^\x21-\x7e]/.test(token)) {
                setState('unauthorized');
                showMessage('error', 'Not a token', 'An API token is made of visible ASCII characters, without ' +
                  'spaces: copy it again from API_ADMIN_TOKEN.');
                return;
              }
              clearTimeout(retryTimer);
              sessionStorage.setItem(TOKEN_KEY, token);
              hideMessage();
              load();
            });
            byId('refresh').addEventListener('click', () => load());
            byId('forget').addEventListener('click', () => {
              sessionStorage.removeItem(TOKEN_KEY);
              clearData();
              signedOut();
              setState('signed-out');
              showMessage('info', 'Token forgotten',
                'This tab no longer holds the token; nothing is shown until it is given again.');
            });
            load();
          }

          if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
        })();

        """#
}
