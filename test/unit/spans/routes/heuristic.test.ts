import { classifyToken, heuristicRoute } from '../../../../src/spans/routes/heuristic';

describe('heuristic routes', () => {
  it.each([
    // REST ids
    ['/users/42', '/users/{id}'],
    ['/users/42/orders/1337', '/users/{id}/orders/{id}'],
    ['/items/0', '/items/{id}'],
    ['/api/v1/accounts/9876543210/transactions', '/api/v1/accounts/{id}/transactions'],
    ['/orders/ORD-12345', '/orders/{id}'],
    ['/customers/cus_9aBc7XyZ12', '/customers/{id}'],
    ['/u/a1b2c3', '/u/{id}'],
    // UUIDs, hashes, object ids, ULIDs, tokens
    ['/sessions/550e8400-e29b-41d4-a716-446655440000', '/sessions/{id}'],
    ['/sessions/550E8400-E29B-41D4-A716-446655440000/events', '/sessions/{id}/events'],
    ['/commits/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b', '/commits/{id}'],
    ['/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '/blobs/sha256/{id}'],
    ['/docs/507f1f77bcf86cd799439011', '/docs/{id}'],
    ['/events/01ARZ3NDEKTSV4RRFFQ69G5FAV', '/events/{id}'],
    ['/invite/V1StGXR8_Z5jdHi6B-myT', '/invite/{id}'],
    ['/users/jane.doe@example.com/profile', '/users/{id}/profile'],
    // versioned APIs stay versioned
    ['/v2/users/42', '/v2/users/{id}'],
    ['/api/v1.2/search', '/api/v1.2/search'],
    ['/api/V3/things/7', '/api/V3/things/{id}'],
    // dates
    ['/reports/2024-05-01', '/reports/{date}'],
    ['/logs/2024-05-01T10:15:00Z/lines', '/logs/{date}/lines'],
    ['/archive/2024/05/01', '/archive/{id}/{id}/{id}'],
    // file names
    ['/static/app.js', '/static/app.js'],
    ['/static/app.3f9a2c1b.js', '/static/app.{id}.js'],
    ['/assets/jquery-3.7.1.min.js', '/assets/jquery-3.7.1.min.js'],
    ['/uploads/IMG_20240501_123456.jpg', '/uploads/{id}.jpg'],
    ['/exports/550e8400-e29b-41d4-a716-446655440000.csv', '/exports/{id}.csv'],
    ['/reports/report-2024-05-01.pdf', '/reports/{id}.pdf'],
    ['/favicon.ico', '/favicon.ico'],
    ['/robots.txt', '/robots.txt'],
    // words (with small numbers) that are not ids
    ['/api/health', '/api/health'],
    ['/healthz', '/healthz'],
    ['/metrics', '/metrics'],
    ['/oauth2/token', '/oauth2/token'],
    ['/hash/sha256', '/hash/sha256'],
    ['/net/ipv6/routes', '/net/ipv6/routes'],
    ['/auth/2fa', '/auth/2fa'],
    ['/video/4k/stream', '/video/4k/stream'],
    ['/blog/how-to-cook-pasta', '/blog/how-to-cook-pasta'],
    ['/.well-known/openid-configuration', '/.well-known/openid-configuration'],
    ['/search/hello%20world', '/search/hello%20world'],
    ['/files/2024%2D05%2D01', '/files/{date}'],
    ['/files/report%2D2024%2D05%2D01', '/files/{id}'],
    // shapes
    ['/', '/'],
    ['/users/42/', '/users/{id}'],
    ['/users/', '/users'],
    ['/a//b', '/a//b'],
  ])('%s -> %s', (path, route) => {
    expect(heuristicRoute(path)).toBe(route);
  });

  it('has no route for a path that is not origin-form', () => {
    expect(heuristicRoute('*')).toBe('');
    expect(heuristicRoute('')).toBe('');
  });

  it('never takes a word for an id, and takes numbers of any size for one', () => {
    for (const w of ['users', 'api', 'health', 'static', 'login', 'v1', 'v10', 'http2', 'utf8', 'x86', 'mp4', 'h264', 'deadbeef', 'facade', 'cafe']) {
      expect(classifyToken(w)).toBeUndefined();
    }
    for (const n of ['0', '7', '123456789012345678901234567890']) expect(classifyToken(n)).toBe('{id}');
  });

  it('folds a scan of random numeric and uuid ids into one route', () => {
    const routes = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      routes.add(heuristicRoute(`/items/${Math.floor(Math.random() * 1e9)}`));
      routes.add(heuristicRoute(`/items/${crypto.randomUUID()}/parts/${i}`));
    }
    expect([...routes].sort()).toEqual(['/items/{id}', '/items/{id}/parts/{id}']);
  });
});
