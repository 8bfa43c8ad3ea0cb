import type { SourceDefinition } from '../../types.ts';
import { createCin7Client, type Cin7Client } from './client.ts';
import { cin7Config, type Cin7Config } from './config.ts';
import { cin7Fake } from './fake.ts';
import { cin7Refetch } from './refetch.ts';
import { createCin7Vouchers } from './vouchers.ts';

declare module '../../config.ts' {
  interface SourceSections {
    cin7: Cin7Config | null;
  }
}

export const cin7 = {
  name: 'cin7',
  config: cin7Config,
  fake: cin7Fake,
  settings: (section) => ({
    lookbackMs: section.lookbackMs,
    confirmMax: section.confirmMax,
    limits: section.limits,
    schedules: { incremental: section.schedule, full: section.reconcileSchedule },
  }),
  createClient: (section, deps) => createCin7Client(section, deps),
  createStreams: (section) => [{ ...createCin7Vouchers(section), ...cin7Refetch }],
} satisfies SourceDefinition<Cin7Config, Cin7Client>;
