// The microphone's samples, block by block, to the page (live.js), which frames and sends them.
class VoxflowMic extends AudioWorkletProcessor {
  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (channel) this.port.postMessage(channel.slice(0));
    return true;
  }
}
registerProcessor("voxflow-mic", VoxflowMic);
