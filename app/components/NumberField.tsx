import { useEffect, useState } from 'react';

/**
 * A labelled number input. It keeps what the person types ("0.", "1e-") while they type, and hands
 * the parent the number it reads (NaN for an empty field), so the parent's check can say what is
 * wrong with it.
 */
export function NumberField({
  label, value, onChange, min, max, step = 1, disabled = false, title, testId,
}: {
  label: string;
  value: number;
  onChange: (v: number) => void;
  min?: number;
  max?: number;
  step?: number | 'any';
  disabled?: boolean;
  title?: string;
  testId?: string;
}) {
  const [text, setText] = useState(() => (Number.isNaN(value) ? '' : String(value)));
  const parse = (t: string) => (t.trim() === '' ? NaN : Number(t));
  useEffect(() => {
    // Follow changes from elsewhere (the URL hash), not the echo of our own typing.
    if (!Object.is(parse(text), value)) setText(Number.isNaN(value) ? '' : String(value));
  }, [value]);
  return (
    <label className="number" title={title}>
      {label}
      <input
        type="number"
        value={text}
        min={min}
        max={max}
        step={step}
        disabled={disabled}
        data-testid={testId}
        onChange={(e) => {
          setText(e.target.value);
          onChange(parse(e.target.value));
        }}
      />
    </label>
  );
}
