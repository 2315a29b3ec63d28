/** A trainer problem, as a sentence for people (a missing tensor, a bad LoRA rank, a stale forward…). */
export class TrainerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TrainerError';
  }
}
