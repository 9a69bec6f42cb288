import { checkName } from '../participants/names.js';
import { defineParticipantName } from './metadata.js';

/** The class decorator `@Participant` returns, for standard and legacy decorators alike. */
// biome-ignore lint/suspicious/noExplicitAny: any class may be a participant
export type ParticipantDecorator = <T extends abstract new (...args: any[]) => object>(
  value: T,
  context?: ClassDecoratorContext,
) => void;

/**
 * Names the participant a class's compensable methods belong to (default: the class name).
 * Records store `name.method`, so the name must stay the same across deployments: a
 * recovering process finds confirm and cancel by it.
 */
export function Participant(name: string): ParticipantDecorator {
  checkName(name, '@Participant');
  return (value) => {
    defineParticipantName(value, name);
  };
}
