import type { CareCloudConfig } from '../../config.ts';
import type { SourceDefinition } from '../../types.ts';
import { createCareCloudClient, type CareCloudClient } from './client.ts';
import { createCareCloudVouchers } from './vouchers.ts';

export const carecloud = {
  name: 'carecloud',
  section: (config) => config.carecloud,
  settings: (section) => ({
    lookbackMs: section.lookbackMs,
    confirmMax: section.confirmMax,
    limits: section.limits,
    schedules: { incremental: section.schedule, full: section.fullSchedule },
  }),
  createClient: (section, deps) => createCareCloudClient(section, deps),
  createStreams: (section) => [createCareCloudVouchers(section)],
} satisfies SourceDefinition<CareCloudConfig, CareCloudClient>;
