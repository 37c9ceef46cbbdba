import * as shardsfu from './dist/index.js';

export * from './dist/index.js';
export default shardsfu;
