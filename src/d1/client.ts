// The D1 handle every D1 part of the package takes: a binding or a session.
/**
 * What the store talks to: a D1 binding (`env.DB`) or a session from
 * `env.DB.withSession(...)`.
 *
 * With read replication on, a projection must read its own writes: pass the
 * plain binding, or a session opened with `withSession("first-primary")`. A
 * session opened with `"first-unconstrained"` may serve `load` from a replica
 * that has not seen the last `save` yet, and the projection would apply
 * events twice.
 *
 * @category Stores
 */
export type D1Client = D1Database | D1DatabaseSession;
