// The fleet of workers.config.ts with real PyTorch jobs (examples/pytorch/): each model trains a
// small LSTM on daily bars, writes a torch checkpoint every epoch and resumes from one; validation
// scores a checkpoint's directional accuracy on a held-out year; backtests trade its predictions.
// Run it with CAELUM_CONFIG=workers.pytorch.config.ts (README, "The PyTorch pipeline").
//
// The commands run Debian's /usr/bin/python3, where `apt-get install python3-torch` puts
// PyTorch. A command has no environment of its own in this config, so the scripts put this
// checkout's python/ folder (the caelum_job library) on their import path themselves: nothing
// is pip-installed into Debian's externally managed Python.
import base from './workers.config.js';
import { defineConfig, type FleetInput } from 'caelum-scheduler/config';

type Model = FleetInput['models'][string];

const python = '/usr/bin/python3';
const script = (name: string, ...args: string[]) => [python, `examples/pytorch/${name}.py`, ...args];

function pytorch(model: Model, epochs: number): Model {
  // LLM-1's deploy test starts examples/fincoll-stub.mjs, which reads the JSON files of
  // examples/trainer.mjs, not torch files: here every model is validated by validate.py.
  const { deployTest: _stubOnly, ...rest } = model;
  return {
    ...rest,
    train: { ...model.train, command: script('train', '--epochs', String(epochs), '--symbols', (model.symbols ?? []).join(',')) },
    validate: { ...model.validate, command: script('validate') },
    validation: 'command',
    // Directional accuracy on the held-out year: a coin scores 0.5, a trained model about 0.6.
    thresholds: { val_accuracy: { min: 0.55 } },
    // Another architecture than the example trainer's checkpoints: labels say v2, files live apart.
    versionMajor: 2,
    checkpointDir: model.checkpointDir.replace('var/checkpoints/', 'var/pytorch-checkpoints/'),
  };
}

const models = base.models;

export default defineConfig({
  ...base,
  models: {
    'llm1-tech': pytorch(models['llm1-tech']!, 5),
    'llm3-yieldmax': pytorch(models['llm3-yieldmax']!, 8),
    'llm5-volatility': pytorch(models['llm5-volatility']!, 6),
  },
  // backtest.py runs one job per process (it does not serve(): README, "Warm runners").
  backtest: { ...base.backtest, command: script('backtest'), runner: { mode: 'cold' } },
});
