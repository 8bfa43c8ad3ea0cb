import type { Cin7Config } from '../../config.ts';
import type { SourceDefinition } from '../../types.ts';
import { createCin7Client, type Cin7Client } from './client.ts';
import { createCin7Vouchers } from './vouchers.ts';

export const cin7 = {
  name: 'cin7',
  section: (config) => config.cin7,
  settings: (section) => ({
    lookbackMs: section.lookbackMs,
    confirmMax: section.confirmMax,
    limits: section.limits,
    schedules: { incremental: section.schedule, full: section.reconcileSchedule },
  }),
  createClient: (section, deps) => createCin7Client(section, deps),
  createStreams: (section) => [createCin7Vouchers(section)],
} satisfies SourceDefinition<Cin7Config, Cin7Client>;
