// A test-only ClickHouse HTTP front: the subset of ClickHouse's HTTP interface that rollout's
// clickhouse source speaks, answered by chdb (the ClickHouse engine embedded in a Node.js addon), so
// that tests run the current engine's SQL (Map, DateTime64, FINAL on ReplacingMergeTree) with no
// server to install. Started by testserver.Chdb; never used outside tests.
//
//   node chdbfront.js PORT DATA_DIR USER PASSWORD
//
// GET /ping answers "Ok.". POST / (or GET /?query=) runs the URL's query parameter followed by the
// body as one statement, with HTTP basic auth (or X-ClickHouse-User/Key), the database parameter and
// ClickHouse settings as further URL parameters, and answers TabSeparated unless the SQL names its
// FORMAT. An error answers 500 (401 for a failed login) with ClickHouse's own exception text.
'use strict';
const http = require('http');
const { Session } = require('chdb');

const [port, dataDir, user, password] = process.argv.slice(2);
const session = new Session(dataDir);
const settingName = /^[a-z][a-z0-9_]*$/;
// What the session was last told: its database and the settings requests set.
const current = { database: '', settings: new Map() };
// readonly is reserved too: a real server applies a URL's settings to that request only, but this front
// keeps them in one session, where readonly could never be lifted again for the test's own loaders.
// The read-only refusal is tested against the real server (testserver.ClickHouse).
const reserved = new Set(['query', 'database', 'default_format', 'user', 'password', 'query_id', 'session_id', 'readonly']);

function credentials(req, params) {
  const auth = req.headers['authorization'];
  if (auth && auth.startsWith('Basic ')) {
    const text = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const i = text.indexOf(':');
    return [text.slice(0, i), text.slice(i + 1)];
  }
  if (req.headers['x-clickhouse-user']) {
    return [req.headers['x-clickhouse-user'], req.headers['x-clickhouse-key'] || ''];
  }
  return [params.get('user') || 'default', params.get('password') || ''];
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/ping') {
    res.end('Ok.\n');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const params = url.searchParams;
    const [u, p] = credentials(req, params);
    if (u !== user || p !== password) {
      res.writeHead(401, { 'X-ClickHouse-Exception-Code': '516' });
      res.end(`Code: 516. DB::Exception: ${u}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n`);
      return;
    }
    const sql = [params.get('query') || '', Buffer.concat(chunks).toString('utf8')].filter((s) => s !== '').join('\n');
    try {
      // The session keeps its database and settings between requests: change them only when a request
      // asks for others (each statement costs the engine a round of its own).
      const database = params.get('database') || 'default';
      if (database !== current.database) {
        session.query(`USE ${database}`, 'TabSeparated');
        current.database = database;
      }
      for (const [name, value] of params) {
        if (!reserved.has(name) && settingName.test(name) && current.settings.get(name) !== value) {
          session.query(`SET ${name} = ${/^-?[0-9.]+$/.test(value) ? value : `'${value.replace(/[\\']/g, '\\$&')}'`}`, 'TabSeparated');
          current.settings.set(name, value);
        }
      }
      const out = session.query(sql, params.get('default_format') || 'TabSeparated');
      res.writeHead(200, { 'Content-Type': 'text/tab-separated-values; charset=UTF-8' });
      res.end(out);
    } catch (e) {
      const msg = String(e && e.message ? e.message : e).replace(/^Query failed: /, '');
      const code = /Code: (\d+)/.exec(msg);
      res.writeHead(500, { 'X-ClickHouse-Exception-Code': code ? code[1] : '0' });
      res.end(msg.endsWith('\n') ? msg : msg + '\n');
    }
  });
});

server.listen(Number(port), '127.0.0.1');
function stop() {
  server.close();
  session.close();
  process.exit(0);
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
