extension StatusPage {
    /// The page's style: the system's own fonts (nothing fetched), colours that keep their meaning without colour
    /// (every state is also written out), and charts sized by their container.
    static let css = #"""
        :root {
          --ink: #1f2933;
          --muted: #616e7c;
          --line: #d9e2ec;
          --paper: #ffffff;
          --ground: #f0f4f8;
          --accent: #1d4ed8;
          --ok: #1f8a4c;
          --ok-soft: #e3f6ea;
          --bad: #c62828;
          --bad-soft: #fdecea;
          --warn: #b25e09;
          --warn-soft: #fff4e0;
          --unknown: #829ab1;
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", Arial,
            sans-serif;
          font-size: 15px;
          line-height: 1.45;
          color: var(--ink);
          background: var(--ground);
        }
        * { box-sizing: border-box; }
        [hidden] { display: none !important; }
        body { margin: 0; }
        code, .mono {
          font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace; font-size: 0.9em;
        }
        code { white-space: nowrap; }
        h1, h2, h3 { margin: 0; font-weight: 600; }
        h2 { font-size: 1.15rem; }
        h3 { font-size: 0.95rem; }
        button {
          font: inherit; border: 1px solid var(--accent); background: var(--accent); color: #fff;
          border-radius: 6px; padding: 0.35rem 0.85rem; cursor: pointer;
        }
        button.quiet { background: transparent; color: #dbe4f0; border-color: #52606d; }
        button:focus-visible, input:focus-visible { outline: 3px solid #93c5fd; outline-offset: 1px; }

        .top {
          display: flex; flex-wrap: wrap; gap: 0.75rem 2rem; align-items: center; justify-content: space-between;
          padding: 0.9rem 1.5rem; background: #1f2933; color: #f5f7fa;
        }
        .brand { display: flex; align-items: baseline; gap: 0.75rem; }
        .brand h1 { font-size: 1.35rem; letter-spacing: 0.01em; }
        .tagline { color: #9aa5b1; }
        .token-form, .signed-in { display: flex; align-items: center; gap: 0.5rem; flex-wrap: wrap; }
        .token-form label { color: #cbd2d9; }
        .token-form input {
          font: inherit; width: 18rem; max-width: 60vw; padding: 0.35rem 0.6rem; border-radius: 6px;
          border: 1px solid #52606d; background: #323f4b; color: #fff;
        }
        .refreshed { color: #9aa5b1; font-size: 0.9rem; }

        .page { max-width: 1240px; margin: 0 auto; padding: 1.25rem 1.5rem 2rem; }
        .card {
          background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 1.1rem 1.25rem;
          margin-bottom: 1.25rem; box-shadow: 0 1px 2px rgba(15, 23, 42, 0.05);
        }
        .card-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; margin-bottom: 0.9rem; }
        .subhead { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; margin: 1.1rem 0 0.5rem; }
        .muted { color: var(--muted); }
        .intro p { max-width: 60rem; margin: 0.6rem 0 0; }
        .empty { color: var(--muted); margin: 0.5rem 0 0; }
        .footer { color: var(--muted); font-size: 0.85rem; text-align: center; margin-top: 1.5rem; }

        .message { border-radius: 8px; padding: 0.75rem 1rem; margin-bottom: 1.25rem; border: 1px solid; }
        .message.error { background: var(--bad-soft); border-color: #f5b7b1; color: #8e1c1c; }
        .message.warning { background: var(--warn-soft); border-color: #f6d39a; color: #7a4105; }
        .message.info { background: #e8f0fe; border-color: #b6ccf7; color: #1e3a8a; }
        .message strong { display: block; margin-bottom: 0.2rem; }

        .stats { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 0.75rem; }
        .stat { border: 1px solid var(--line); border-radius: 8px; padding: 0.6rem 0.8rem; }
        .stat .label { display: block; color: var(--muted); font-size: 0.8rem; text-transform: uppercase;
          letter-spacing: 0.04em; }
        .stat .value { display: block; font-size: 1.1rem; font-weight: 600; margin-top: 0.15rem; }
        .stat .value.long {
          font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace; font-size: 0.85rem;
          font-weight: 500; overflow-wrap: anywhere;
        }
        .stat .note { display: block; color: var(--muted); font-size: 0.85rem; }

        .pill {
          display: inline-block; border-radius: 999px; padding: 0.05rem 0.6rem; font-size: 0.85rem; font-weight: 600;
          border: 1px solid transparent; white-space: nowrap;
        }
        .pill.ok { background: var(--ok-soft); color: var(--ok); border-color: #b7e4c7; }
        .pill.bad { background: var(--bad-soft); color: var(--bad); border-color: #f5b7b1; }
        .pill.warn { background: var(--warn-soft); color: var(--warn); border-color: #f6d39a; }
        .pill.none { background: #eef2f6; color: var(--muted); border-color: var(--line); }
        .stat .value .pill { font-size: 1rem; }

        .probe-strip svg { display: block; width: 100%; height: 44px; }
        .probe-strip .probe.healthy { fill: var(--ok); }
        .probe-strip .probe.unhealthy { fill: var(--bad); }
        .probe-strip .slot { fill: #e4e9ef; }
        .axis-row { display: flex; justify-content: space-between; font-size: 0.8rem; margin-top: 0.2rem; }

        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 1rem; }
        .chart { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 0.75rem 0.85rem 0.5rem; }
        .chart figcaption { font-weight: 600; }
        .check { font-size: 0.9rem; margin: 0.2rem 0 0.4rem; min-height: 1.3em; }
        .check.ok { color: var(--ok); }
        .check.bad { color: var(--bad); }
        .check.warn { color: var(--warn); }
        .check.none { color: var(--muted); }
        .plot svg { display: block; width: 100%; height: auto; overflow: visible; }
        .plot .grid { stroke: #e4e9ef; stroke-width: 1; }
        .plot .axis-label { fill: var(--muted); font-size: 11px; }
        .plot .series { fill: none; stroke: var(--accent); stroke-width: 2; stroke-linejoin: round; }
        .plot .point { fill: var(--accent); stroke: #fff; stroke-width: 1.5; }
        .plot .point.safety { fill: #fff; stroke: var(--accent); stroke-width: 2; }
        .plot .point.over { fill: var(--bad); }
        .plot .limit { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 5 4; }
        .plot .limit-label { fill: var(--bad); font-size: 11px; }
        .plot .note { fill: var(--muted); font-size: 12px; }
        .plot .bar-track { fill: #eef2f6; }
        .plot .bar.free.ok { fill: var(--ok); }
        .plot .bar.free.bad { fill: var(--bad); }
        .plot .bar.needed { fill: #52606d; }
        .plot .bar-label { fill: var(--ink); font-size: 12px; }
        .plot .bar-value { fill: var(--ink); font-size: 12px; font-weight: 600; }

        .table-wrap { overflow-x: auto; }
        .table { width: 100%; border-collapse: collapse; font-size: 0.92rem; }
        .table th {
          text-align: left; font-weight: 600; color: var(--muted); font-size: 0.8rem; text-transform: uppercase;
          letter-spacing: 0.04em; border-bottom: 2px solid var(--line); padding: 0.4rem 0.6rem; white-space: nowrap;
        }
        .table td { border-bottom: 1px solid var(--line); padding: 0.45rem 0.6rem; vertical-align: top; }
        .table tbody tr:hover { background: #f7f9fb; }
        .table .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .table .name { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", Menlo, monospace;
          font-size: 0.86rem; white-space: nowrap; }
        .table .sub { display: block; color: var(--muted); font-size: 0.82rem; }
        .table .tags { display: flex; gap: 0.3rem; flex-wrap: wrap; margin-top: 0.2rem; white-space: normal; }
        .nowrap, .table td.verified { white-space: nowrap; }

        .rollback-summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 0.75rem;
          margin-bottom: 0.9rem; }
        .reason { margin: 0 0 0.9rem; padding: 0.6rem 0.8rem; border-left: 4px solid var(--line); background: #f7f9fb; }
        .steps .detail { color: var(--muted); }

        @media (max-width: 640px) {
          .page { padding: 1rem 0.75rem; }
          .top { padding: 0.75rem; }
        }

        """#
}
