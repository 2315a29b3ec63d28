/**
 * Issue 14's acceptance point on the reasoning task, at a smaller scale than the benchmark
 * (`npm run bench -- first-error`, 50 wrong answers): the built-in worked-addition student
 * (models/worked-student) answers held-out prompts greedily until WRONG of its answers are wrong;
 * each is scored against models/worked-teacher by the lab's scorer (scoreText, what Inspect
 * shows), and the token carrying the largest exact reverse KL is compared with the first token
 * where the answer departs from the correct one (firstErrorIndex).
 *
 * Greedy: the student's own answer (the one an evaluation verifies). Over 50 wrong greedy answers
 * the benchmark measured the largest reverse KL on the first wrong token in 41 (82%); the test
 * asks for more than half of the first 12 (12, not 20, to keep the file near a minute: on SwiftShader with the 2 cores shared, 12 took 59 s at load average 8-12 and 20 took 130 s at 15; 8 of 12 pass). Answers sampled at temperature 1 do not pass this
 * (16 of 50, 32%: their first wrong token is often one the student itself thought unlikely, and
 * the teacher's largest disagreement comes after it), though their largest sampled KL does
 * (38 of 50, 76%); models/README.md has both.
 */
import { describe, expect, it } from 'vitest';
import { measureFirstError } from '../../scripts/bench/first-error';
import { testDevice } from './gpu';
import { cliDriverEnv } from './cli-driver';

// Mesa's lavapipe where it is installed (as distill.test.ts): this file's greedy answers and
// scores are many small dispatches, several times faster there than on SwiftShader.
Object.assign(process.env, cliDriverEnv());

const WRONG = 12;

describe('the reasoning task: the first wrong token carries the largest penalty', () => {
  it(`in most of ${WRONG} wrong greedy answers of the built-in student`, async () => {
    const r = await measureFirstError(await testDevice(), { wrong: WRONG, temperature: 0, batch: 24 });
    console.log(`[first-error] largest reverse KL on the first wrong token in ${r.reverseKL.at}/${r.wrong}, sampled KL ${r.sampledKL.at}/${r.wrong} (${r.answered} prompts, ${r.seconds} s)`);
    expect(r.wrong).toBe(WRONG);
    expect(r.right + r.wrong).toBe(r.answered);
    // Every case is a real wrong answer: its first wrong token lies inside it, and the teacher
    // penalises something in it.
    for (const c of r.cases) {
      expect(c.firstError).toBeLessThan(c.tokens);
      expect(c.maxReverseKL).toBeGreaterThan(0.01);
    }
    expect(r.reverseKL.fraction).toBeGreaterThan(0.5);
  });
});
