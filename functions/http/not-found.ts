import { methodNotAllowed, routeNotFound } from './errors.js';
import { httpRoute } from './middleware.js';
import { allowedAt } from './routes.js';

/** The `$default` route: anything the route table does not match. */
export const handler = httpRoute({}, async ({ event }) => {
  const { method, path } = event.requestContext.http;
  const allowed = allowedAt(path);
  if (allowed.length > 0) throw methodNotAllowed(method, path, allowed);
  throw routeNotFound(method, path);
});
