import { describe, expect, it } from 'vitest';
import { ReadBudget } from '../../src/service/read-budget';

const never = () => undefined;

describe('ReadBudget', () => {
  it("grants a tenant's streams while they fit, then in order as earlier ones end; other tenants are not held up", async () => {
    const budget = new ReadBudget(10);
    const first = await budget.acquire('b', 6, never);
    const second = await budget.acquire('b', 4, never);
    const granted: string[] = [];
    const third = budget.acquire('b', 6, never).then((release) => (granted.push('third'), release));
    const fourth = budget.acquire('b', 1, never).then((release) => (granted.push('fourth'), release));
    // Another tenant's stream is not behind b's.
    expect(await budget.acquire('a', 10, never)).toBeTypeOf('function');
    await Promise.resolve();
    expect(granted).toEqual([]);
    second!();
    second!(); // a second call gives nothing back twice
    await Promise.resolve();
    expect(granted).toEqual([]);
    expect(budget.heldBytes('b')).toBe(6);
    first!();
    (await third)!();
    (await fourth)!();
    expect(granted).toEqual(['third', 'fourth']);
    expect(budget.heldBytes('b')).toBe(0);
  });

  it('queues a stream that would fit behind an earlier one still waiting, so small reads do not starve a large one', async () => {
    const budget = new ReadBudget(10);
    const first = await budget.acquire('b', 6, never);
    const granted: string[] = [];
    const large = budget.acquire('b', 6, never).then((release) => (granted.push('large'), release));
    // 6 + 4 fits the budget, but the large stream asked first.
    const small = budget.acquire('b', 4, never).then((release) => (granted.push('small'), release));
    await Promise.resolve();
    await Promise.resolve();
    expect(granted).toEqual([]);
    expect(budget.heldBytes('b')).toBe(6);
    first!();
    const releases = await Promise.all([large, small]);
    expect(granted).toEqual(['large', 'small']);
    expect(budget.heldBytes('b')).toBe(10);
    for (const release of releases) release!();
    expect(budget.heldBytes('b')).toBe(0);
  });

  it('lets a stream larger than the budget through when the tenant holds nothing', async () => {
    const budget = new ReadBudget(10);
    const release = await budget.acquire('b', 64, never);
    expect(budget.heldBytes('b')).toBe(64);
    release!();
    expect(budget.heldBytes('b')).toBe(0);
  });

  it('drops a cancelled waiter, holding nothing, and serves the next', async () => {
    const budget = new ReadBudget(10);
    const first = await budget.acquire('b', 8, never);
    let cancel: () => void = () => undefined;
    const cancelled = budget.acquire('b', 8, (listener) => (cancel = listener));
    const next = budget.acquire('b', 2, never);
    cancel();
    expect(await cancelled).toBeUndefined();
    const release = await next;
    expect(budget.heldBytes('b')).toBe(10);
    first!();
    release!();
    expect(budget.heldBytes('b')).toBe(0);
  });
});
