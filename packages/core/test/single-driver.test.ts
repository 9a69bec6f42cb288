import { MemoryStorage } from '@tcc/core';
import { describeSingleDriver } from '@tcc/core/testing';

describeSingleDriver('MemoryStorage', { create: async () => new MemoryStorage() });
