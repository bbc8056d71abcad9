extension StatusPage {
    /// The page: a frame with no data in it. `status.js` fills it from the API once the operator gives the token.
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>Contingency · status</title>
        <link rel="icon" href="/favicon.svg" type="image/svg+xml">
        <link rel="stylesheet" href="/status.css">
        <script src="/status.js" defer></script>
        </head>
        <body data-state="starting">
        <header class="top">
          <div class="brand">
            <h1>Contingency</h1>
            <span class="tagline">backups, health and rollbacks</span>
          </div>
          <div class="session">
            <form id="token-form" class="token-form" autocomplete="off">
              <label for="token">API token</label>
              <!-- No name: without the script, the form sends nothing (and its CSP, form-action none, nowhere). -->
              <input id="token" type="password" autocomplete="off" spellcheck="false"
                placeholder="API_ADMIN_TOKEN" required>
              <button type="submit" id="token-submit">Show status</button>
            </form>
            <div id="signed-in" class="signed-in" hidden>
              <span id="refreshed" class="refreshed"></span>
              <button type="button" id="refresh">Refresh</button>
              <button type="button" id="forget" class="quiet">Forget token</button>
            </div>
          </div>
        </header>

        <div class="page">
          <div id="message" class="message" role="status" aria-live="polite" hidden></div>

          <section id="intro" class="card intro">
            <h2>Give the admin API token to see the status</h2>
            <p>This page shows the application's health, its probe history, the backups, the last rollback and the
            runbook's watch list. It holds no data itself: your browser asks the sidecar's admin API for it with the
            token (<code>API_ADMIN_TOKEN</code>), sent as <code>X-API-Token</code> exactly as the runbook's
            <code>curl</code> examples do. The token stays in this tab only (session storage) and is forgotten when
            the tab is closed.</p>
          </section>

          <main id="content" hidden>
            <section class="card" aria-labelledby="health-title">
              <div class="card-head">
                <h2 id="health-title">Application health</h2>
                <span id="health-url" class="muted mono"></span>
              </div>
              <div id="health" class="stats"></div>
              <div class="subhead">
                <h3>Probe history</h3>
                <span id="probe-summary" class="muted"></span>
              </div>
              <div id="probes" class="probe-strip"></div>
              <div class="axis-row">
                <span id="probes-first" class="muted"></span><span id="probes-last" class="muted"></span>
              </div>
            </section>

            <section class="card" aria-labelledby="watch-title">
              <div class="card-head">
                <h2 id="watch-title">Watch list</h2>
                <span class="muted">the runbook's: size growing, duration under 5 min, free disk at least twice
                  the last backup</span>
              </div>
              <div class="charts">
                <figure class="chart" id="watch-size">
                  <figcaption>Backup size</figcaption>
                  <div class="check" id="check-size"></div>
                  <div class="plot" id="chart-size"></div>
                </figure>
                <figure class="chart" id="watch-duration">
                  <figcaption>Backup duration</figcaption>
                  <div class="check" id="check-duration"></div>
                  <div class="plot" id="chart-duration"></div>
                </figure>
                <figure class="chart" id="watch-disk">
                  <figcaption>Free disk</figcaption>
                  <div class="check" id="check-disk"></div>
                  <div class="plot" id="chart-disk"></div>
                </figure>
              </div>
            </section>

            <section class="card" aria-labelledby="backups-title">
              <div class="card-head">
                <h2 id="backups-title">Backups</h2>
                <span id="backup-count" class="muted"></span>
              </div>
              <div class="table-wrap">
                <table id="backups" class="table">
                  <thead>
                    <tr>
                      <th scope="col">Backup</th>
                      <th scope="col">Created (UTC)</th>
                      <th scope="col" class="num">Size</th>
                      <th scope="col" class="num">Duration</th>
                      <th scope="col">Verified</th>
                      <th scope="col">Encrypted</th>
                      <th scope="col">Signature</th>
                      <th scope="col">Stores</th>
                    </tr>
                  </thead>
                  <tbody id="backup-rows"></tbody>
                </table>
              </div>
              <p id="backups-empty" class="empty" hidden>No backup in the store yet.</p>
            </section>

            <section class="card" aria-labelledby="rollback-title">
              <div class="card-head">
                <h2 id="rollback-title">Last rollback</h2>
                <span id="rollback-id" class="muted mono"></span>
              </div>
              <div id="rollback"></div>
            </section>
          </main>

          <noscript><p class="card">This page needs JavaScript to ask the API for its data (with the token). The
          same data is at <code>/api/status</code> and <code>/api/backups</code> with
          <code>curl -H "X-API-Token: …"</code>.</p></noscript>
          <footer class="footer">Contingency's health-sidecar · data from <code>/api/status</code> and
          <code>/api/backups</code>, refreshed every 30 s while this tab is open.</footer>
        </div>
        </body>
        </html>

        """#

    /// The tab's icon: a shield, drawn in SVG (no image file to ship).
    static let icon = #"""
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
          <path d="M16 2 4 7v8c0 7.5 5.1 13.4 12 15 6.9-1.6 12-7.5 12-15V7z" fill="#1d4ed8"/>
          <path d="m10.5 16.5 4 4 7-8" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round"
            stroke-linejoin="round"/>
        </svg>

        """#
}
