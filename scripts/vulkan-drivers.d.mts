export declare const LAVAPIPE_ADVICE: string;
export declare function lavapipeIcd(): string | undefined;
