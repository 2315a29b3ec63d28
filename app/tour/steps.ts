/**
 * The guided tour's steps. Each says what to read, which panel to show, which element to point
 * at (a CSS selector, highlighted and scrolled into view) and, for the three methods, the run the
 * lab starts on the built-in pair and task.
 */
import type { ObjectiveName } from '../../workers/contract/run';
import type { PanelId } from '../state/labStore';

export interface TourStep {
  title: string;
  /** Paragraphs. */
  text: string[];
  panel?: PanelId;
  /** What the step points at; the first selector found on the page. */
  target?: string[];
  /** The run this step starts when it opens (the tour's steps per run). */
  run?: ObjectiveName;
}

export const TOUR_STEPS: TourStep[] = [
  {
    title: 'Three ways to learn chess',
    text: [
      'A small student model learns to add numbers from a larger teacher. There are three ways it can learn, and chess has a name for each.',
      'Playing alone and learning only whether you won is reinforcement learning. Watching a grandmaster’s games is off-policy distillation. A coach who grades each of your own moves is on-policy distillation.',
      'The tour runs each one on the built-in student and teacher, the same number of steps each, and shows what it learns from.',
    ],
  },
  {
    title: 'Playing alone: reinforcement learning',
    text: [
      'The student answers, and a verifier says only right (1) or wrong (0) for the whole answer: which digit was wrong is never said.',
      'Watch the held-out accuracy: it moves slowly, since most answers teach the student little.',
    ],
    panel: 'distill',
    target: ['[data-testid=chart-accuracy]', '[data-testid=chart-heldout-kl]'],
    run: 'rl',
  },
  {
    title: 'Watching a grandmaster: off-policy distillation',
    text: [
      'The teacher writes the answers and the student learns to copy them (supervised fine-tuning on the teacher’s answers).',
      'It learns from positions the teacher reaches, never from the mistakes the student itself makes.',
    ],
    panel: 'distill',
    target: ['[data-testid=chart-accuracy]', '[data-testid=chart-heldout-kl]'],
    run: 'sft',
  },
  {
    title: 'A coach grades your own moves: on-policy distillation',
    text: [
      'The student writes its own answer, and the teacher scores every token of it in one pass: the per-token reverse KL is the student’s reward.',
      'Below, the probe prompts: the student’s own answers, coloured by how much the teacher disagrees with each token. Move the scrubber, or read the strip row by row: the red fades as the student learns.',
    ],
    panel: 'distill',
    target: ['[data-testid=probe-card]'],
    run: 'opd-sampled',
  },
  {
    title: 'The three, side by side',
    text: [
      'The three runs, on the same axes: held-out accuracy against steps, or against the compute spent (switch to FLOPs). The bar chart splits each run’s FLOPs into the student’s sampling, the teacher’s scoring and the training.',
      'The race below runs all four objectives (opd-full too) with the same seed and budget.',
    ],
    panel: 'compare',
    target: ['[data-testid=compare-charts]'],
  },
  {
    title: 'Your turn',
    text: [
      'In Inspect, let the student answer a prompt of the task and see the teacher’s penalty on every token; click a token for what the teacher wanted instead.',
      'The Classroom switch at the top enlarges the text and hides the advanced knobs.',
    ],
    panel: 'inspect',
    target: ['[data-testid=heatmap-card]', '.panel-body'],
  },
];
