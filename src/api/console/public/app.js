// The console's shell: sign-in with a token (kept for this browser session only), who the token
// is and what it may do (GET /api/auth/me), the navigation between pages (the URL's hash, so a
// page can be bookmarked and reloaded), and the page itself.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, token, whenUnauthorized } from './api.js';
import { html } from './html.js';
import { ErrorNote, Loading, NEEDS_OPERATE } from './ui.js';
import { FleetPage } from './fleet.js';
import { ModelsPage } from './models.js';
import { SchedulesPage } from './schedules.js';
import { DataPage } from './data.js';
import { FailuresPage } from './failures.js';

const PAGES = [
  { path: 'fleet', title: 'Fleet', Page: FleetPage },
  { path: 'models', title: 'Models', Page: ModelsPage },
  { path: 'schedules', title: 'Schedules', Page: SchedulesPage },
  { path: 'data', title: 'Data', Page: DataPage },
  { path: 'failures', title: 'Failures', Page: FailuresPage },
];

/** '#/models/llm1-tech/7' -> ['models', 'llm1-tech', '7']. */
const route = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);

function useRoute() {
  const [parts, setParts] = useState(route());
  useEffect(() => {
    const onHash = () => setParts(route());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return parts;
}

function SignIn({ refused, onSignIn }) {
  const [value, setValue] = useState('');
  const submit = (event) => {
    event.preventDefault();
    if (value.trim()) onSignIn(value.trim());
  };
  return html`<main class="signin">
    <h1>caelum-scheduler console</h1>
    <form onSubmit=${submit}>
      <label for="token">API token</label>
      <input id="token" type="password" autocomplete="off" spellcheck="false" value=${value} onInput=${(e) => setValue(e.currentTarget.value)} />
      <p class="hint">The operator token may act; the read token may only look. The token is kept for this browser tab's session only.</p>
      ${refused ? html`<p class="error" role="alert">${refused}</p>` : null}
      <button type="submit" class="primary">Sign in</button>
    </form>
  </main>`;
}

function Shell({ me, fleet, onSignOut }) {
  const [path = 'fleet', ...rest] = useRoute();
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  useEffect(() => {
    document.title = `${page.title} · caelum-scheduler`;
  }, [page]);
  const readOnly = !me.scopes.includes('operate');
  return html`<div class="shell">
    <header class="top">
      <span class="brand">caelum-scheduler</span>
      <nav aria-label="Pages">
        ${PAGES.map((p) => html`<a href=${`#/${p.path}`} aria-current=${p === page ? 'page' : undefined}>${p.title}</a>`)}
      </nav>
      <span class="who">
        <span>Signed in as <strong>${me.principal}</strong> <span class="muted">(${me.scopes.join(', ')})</span></span>
        <button type="button" onClick=${onSignOut}>Sign out</button>
      </span>
    </header>
    ${readOnly
      ? html`<p class="readonly" id=${NEEDS_OPERATE}>Read-only: this token has the ${me.scopes.join(', ')} scope only, so actions that change state (promote, roll back, pause, trigger, retry, drain) are disabled. Sign in with the operator token to act.</p>`
      : null}
    <main id="main"><${page.Page} me=${me} fleet=${fleet} params=${rest} /></main>
  </div>`;
}

function App() {
  const [session, setSession] = useState({ state: token.get() ? 'checking' : 'signed-out' });
  const signOut = (refused) => {
    token.clear();
    setSession({ state: 'signed-out', refused });
  };
  // A token refused while signed in (revoked, or the API restarted with new tokens). While the
  // token is being checked, the check itself says so.
  useEffect(
    () =>
      whenUnauthorized(() =>
        setSession((s) => {
          if (s.state !== 'signed-in') return s;
          token.clear();
          return { state: 'signed-out', refused: 'The API refused the token (401). Sign in again.' };
        }),
      ),
    [],
  );
  useEffect(() => {
    if (session.state !== 'checking') return;
    Promise.all([api('api/auth/me'), api('api/fleet')])
      .then(([me, fleet]) => setSession({ state: 'signed-in', me, fleet }))
      .catch((error) => (error.status === 401 ? signOut('That token was refused.') : setSession({ state: 'error', error })));
  }, [session.state]);

  if (session.state === 'signed-out') {
    return html`<${SignIn} refused=${session.refused} onSignIn=${(value) => {
      token.set(value);
      setSession({ state: 'checking' });
    }} />`;
  }
  if (session.state === 'checking') return html`<main class="signin"><${Loading} /></main>`;
  if (session.state === 'error') {
    return html`<main class="signin"><${ErrorNote} error=${session.error} />
      <button type="button" onClick=${() => setSession({ state: 'checking' })}>Try again</button>
      <button type="button" onClick=${() => signOut()}>Sign out</button></main>`;
  }
  return html`<${Shell} me=${session.me} fleet=${session.fleet} onSignOut=${() => signOut()} />`;
}

render(html`<${App} />`, document.getElementById('app'));
