import type { SourceDefinition } from '../../types.ts';
import { createCareCloudClient, type CareCloudClient } from './client.ts';
import { careCloudConfig, type CareCloudConfig } from './config.ts';
import { careCloudFake } from './fake.ts';
import { careCloudRefetch } from './refetch.ts';
import { createCareCloudVouchers } from './vouchers.ts';

declare module '../../config.ts' {
  interface SourceSections {
    carecloud: CareCloudConfig | null;
  }
}

export const carecloud = {
  name: 'carecloud',
  config: careCloudConfig,
  fake: careCloudFake,
  settings: (section) => ({
    lookbackMs: section.lookbackMs,
    confirmMax: section.confirmMax,
    limits: section.limits,
    schedules: { incremental: section.schedule, full: section.reconcileSchedule },
  }),
  createClient: (section, deps) => createCareCloudClient(section, deps),
  customerRuns: true,
  createStreams: (section) => [{ ...createCareCloudVouchers(section), ...careCloudRefetch }],
} satisfies SourceDefinition<CareCloudConfig, CareCloudClient>;
