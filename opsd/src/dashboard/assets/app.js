// opsd's dashboard: routes the page's address to its page, keeps the overview live from the
// feed (/v1/events, reconnecting by itself), and wires the header and the confirmation dialog.
// The pages themselves are in overview.js, rollout.js, timeline.js and reports.js.
'use strict';

(function () {
  const { page, api, toast, isOperator, renderOverview, updateBakes, renderRollout, refreshTrafficCharts, renderAudit, renderTimeline, renderDrills, renderCosts, renderAlarms, runPending } = window.opsd;

  function route(fromFeed) {
    const hash = location.hash || '#/';
    const rollout = hash.match(/^#\/rollouts\/([A-Za-z0-9_-]+)$/);
    let done;
    if (rollout) done = renderRollout(rollout[1], fromFeed === true);
    else if (hash === '#/audit') done = renderAudit();
    else if (hash === '#/drills') done = renderDrills();
    else if (hash === '#/costs') done = renderCosts();
    else if (hash === '#/alarms') done = renderAlarms();
    else if (hash === '#/timeline' || hash.startsWith('#/timeline?')) {
      // A person editing the filter is not interrupted by the live feed.
      if (fromFeed === true && document.getElementById('timeline-filter') && document.getElementById('timeline-filter').contains(document.activeElement)) return;
      done = renderTimeline(hash.slice('#/timeline'.length + 1));
    }
    else done = Promise.resolve(renderOverview());
    done.catch((error) => toast(error.message));
  }

  function setLive(live) {
    const badgeNode = document.getElementById('live');
    badgeNode.textContent = live ? '● live' : '○ reconnecting…';
    badgeNode.className = 'live ' + (live ? 'on' : 'off');
  }

  function connect() {
    const source = new EventSource('/v1/events');
    page.source = source;
    source.addEventListener('overview', (event) => {
      page.overview = JSON.parse(event.data);
      setLive(true);
      const hash = location.hash || '#/';
      if (hash === '#/' || hash === '#') renderOverview();
      else if (hash.startsWith('#/rollouts/') || hash.startsWith('#/timeline')) route(true);
    });
    source.addEventListener('error', () => {
      setLive(false);
      // The browser reconnects by itself; a session that ended sends the page to the login.
      api('/v1/session').catch(() => {});
    });
  }

  async function start() {
    document.documentElement.dataset.pageId = page.pageId;
    page.me = await api('/v1/session');
    document.getElementById('who').textContent = page.me.name + ' (' + page.me.role + ')';
    document.getElementById('nav-audit').hidden = !isOperator();
    document.getElementById('logout').addEventListener('click', async () => {
      await api('/logout', { method: 'POST' }).catch(() => {});
      location.assign('/login');
    });
    document.getElementById('confirm-form').addEventListener('submit', runPending);
    document.getElementById('confirm-cancel').addEventListener('click', () => document.getElementById('confirm').close());
    window.addEventListener('hashchange', () => route());
    setInterval(updateBakes, 1000);
    setInterval(() => refreshTrafficCharts().catch(() => {}), 2000);
    connect();
    route();
  }

  Object.assign(window.opsd, { route });
  start().catch((error) => toast(error.message));
})();
