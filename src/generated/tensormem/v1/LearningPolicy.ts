// Original file: proto/tensormem/v1/workspace.proto

export const LearningPolicy = {
  LEARNING_POLICY_UNSPECIFIED: 'LEARNING_POLICY_UNSPECIFIED',
  LEARNING_POLICY_FIRST_LOOP: 'LEARNING_POLICY_FIRST_LOOP',
  LEARNING_POLICY_OVER_TIME: 'LEARNING_POLICY_OVER_TIME',
  LEARNING_POLICY_NONE: 'LEARNING_POLICY_NONE',
} as const;

export type LearningPolicy =
  | 'LEARNING_POLICY_UNSPECIFIED'
  | 0
  | 'LEARNING_POLICY_FIRST_LOOP'
  | 1
  | 'LEARNING_POLICY_OVER_TIME'
  | 2
  | 'LEARNING_POLICY_NONE'
  | 3

export type LearningPolicy__Output = typeof LearningPolicy[keyof typeof LearningPolicy]
