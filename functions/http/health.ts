import { httpRoute, ok } from './middleware.js';

/** `GET /health`: the API answers. No key, no store read, no data: safe to expose to a load balancer. */
export const handler = httpRoute({ public: true }, async () => ok({ status: 'ok' }));
