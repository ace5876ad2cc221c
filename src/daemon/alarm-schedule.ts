// One Durable Object alarm shared by several jobs (decision 0025): the jobs
// and their due times are kept in the object's SQLite, and the object's one
// alarm is always set to the earliest of them. So a projection daemon and the
// object's own alarm work never overwrite each other's alarm, and a job that
// was scheduled survives the object's eviction (the table and the alarm are
// durable). The Agents SDK and @cloudflare/actors keep their schedules the same way.

/** The table of due jobs, created once per storage. */
const CREATE_SQL = "CREATE TABLE IF NOT EXISTS projection_alarm_jobs (job TEXT PRIMARY KEY, due_at INTEGER NOT NULL)";

const prepared = new WeakSet<DurableObjectStorage>();

/**
 * The alarm of a SQLite-backed Durable Object, shared by named jobs. Call
 * {@link AlarmSchedule.due} in the object's `alarm()` to learn which jobs to
 * run, and {@link AlarmSchedule.arm} after changing the schedule; `set`,
 * `setEarlier` and `clear` arm the alarm themselves.
 *
 * @example
 * ```ts
 * export class Account extends DurableObject<Env> {
 *   readonly schedule = new AlarmSchedule(this.ctx.storage);
 *   async remind(at: number) {
 *     await this.schedule.set("reminder", at); // never overwrites a daemon's job
 *   }
 *   override async alarm() {
 *     for (const job of this.schedule.due()) if (job === "reminder") await this.sendReminder();
 *     await this.schedule.arm();
 *   }
 * }
 * ```
 */
export class AlarmSchedule {
  readonly #storage: DurableObjectStorage;

  /** The schedule of `storage` (a SQLite-backed object's `ctx.storage`); creates its table once. */
  constructor(storage: DurableObjectStorage) {
    this.#storage = storage;
    if (!prepared.has(storage)) {
      storage.sql.exec(CREATE_SQL);
      prepared.add(storage);
    }
  }

  /** When `job` is due (ms since the epoch), or `undefined` when it is not scheduled. */
  dueAt(job: string): number | undefined {
    const [row] = this.#storage.sql.exec<{ due_at: number }>("SELECT due_at FROM projection_alarm_jobs WHERE job = ?", job).toArray();
    return row?.due_at;
  }

  /** Schedules `job` at `at`, replacing its due time, and arms the alarm. */
  async set(job: string, at: number): Promise<void> {
    this.#storage.sql.exec("INSERT INTO projection_alarm_jobs (job, due_at) VALUES (?1, ?2) ON CONFLICT (job) DO UPDATE SET due_at = excluded.due_at", job, at);
    await this.arm();
  }

  /** Schedules `job` at `at` unless it is due sooner already, and arms the alarm. */
  async setEarlier(job: string, at: number): Promise<void> {
    this.#storage.sql.exec(
      "INSERT INTO projection_alarm_jobs (job, due_at) VALUES (?1, ?2) ON CONFLICT (job) DO UPDATE SET due_at = MIN(due_at, excluded.due_at)",
      job,
      at,
    );
    await this.arm();
  }

  /** Unschedules `job` and arms the alarm for what is left. */
  async clear(job: string): Promise<void> {
    this.#storage.sql.exec("DELETE FROM projection_alarm_jobs WHERE job = ?", job);
    await this.arm();
  }

  /** The jobs due at `now`, earliest first. They stay scheduled until they set a new time or clear themselves. */
  due(now: number = Date.now()): string[] {
    return this.#storage.sql
      .exec<{ job: string }>("SELECT job FROM projection_alarm_jobs WHERE due_at <= ? ORDER BY due_at, job", now)
      .toArray()
      .map((row) => row.job);
  }

  /** The earliest due time of any job, or `undefined` when none is scheduled. */
  next(): number | undefined {
    const [row] = this.#storage.sql.exec<{ due_at: number | null }>("SELECT MIN(due_at) AS due_at FROM projection_alarm_jobs").toArray();
    return row?.due_at ?? undefined;
  }

  /** Sets the object's alarm to the earliest job (or deletes it when none is left). */
  async arm(): Promise<void> {
    const next = this.next();
    if (next === undefined) {
      await this.#storage.deleteAlarm();
      return;
    }
    const current = await this.#storage.getAlarm();
    if (current !== next) await this.#storage.setAlarm(next);
  }
}
