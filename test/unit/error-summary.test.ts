import { describe, expect, it } from 'vitest';
import { errorSummary } from '../../src/http/response-text.ts';
import { careCloudErrorDetails } from '../../src/sources/carecloud/error-details.ts';

const careCloudBody = {
  error: {
    title: 'Bad request',
    error_data: { invalid_params: [{ name: 'count', reason: 'not_allowed_value' }, { reason: 'x' }] },
  },
};

describe('errorSummary', () => {
  it('reads the generic fields of any error body', () => {
    expect(errorSummary({ error: { title: 'Nope', detail: 'no such thing' } })).toBe('Nope; no such thing');
    expect(errorSummary({ Message: 'Cin7 says no' })).toBe('Cin7 says no');
    expect(errorSummary('plain text')).toBe('');
    expect(errorSummary(careCloudBody)).toBe('Bad request');
  });

  it("adds what a source reads from its own shape: CareCloud's invalid_params", () => {
    expect(errorSummary(careCloudBody, careCloudErrorDetails)).toBe('Bad request; count: not_allowed_value; ?: x');
  });
});
