import streamlit as st

from ui import startup

startup.require_frame()

st.title("aigc — watch a machine learn to write digits")

intro, picture = st.columns([3, 2], gap="large")
with intro:
    st.markdown(
        "<p style='font-size:1.3rem'>Pick a generative model, train it live on MNIST's 60,000 handwritten "
        "digits, and explore what it learned.</p>", unsafe_allow_html=True)
    st.markdown("### 1 · Train\nChoose a model and press **Start**. Losses and a grid of samples update every "
                "second; digits appear after about 4 seconds of training on a recent 2-core CPU, longer on slower ones. "
                "A coach says what is going wrong and offers a cure you apply while it trains; a lesson shows a "
                "failure on purpose; the time machine rewinds to an earlier moment and tries other settings from there.")
    st.markdown("### 2 · Explore\nMove sliders to walk through the model's *latent space*: make strokes thicker, "
                "lean the digit, morph one sample into another.")
    st.markdown("### 3 · Compare\nSee the shipped models side by side on the same random seeds, with quality "
                "scores from a digit classifier.")
    b1, b2 = st.columns(2)
    b1.page_link("pages/train.py", label="Start training", icon=":material/model_training:")
    b2.page_link("pages/explore.py", label="Explore a trained model", icon=":material/explore:")

st.divider()
left, right = st.columns(2, gap="large")
with left:
    st.subheader("How a GAN learns")
    st.markdown(
        "A **generator G** turns a vector of random numbers *z* into an image. A **discriminator D** sees real "
        "digits and G's images and outputs the probability that its input is real. They play a game "
        "(Goodfellow et al., 2014):")
    st.latex(r"\min_G \max_D \; \mathbb{E}_{x}\big[\log D(x)\big] + \mathbb{E}_{z}\big[\log\big(1 - D(G(z))\big)\big]")
    st.markdown(
        "D gets better at telling real from fake; G gets better at fooling D. In practice G maximises "
        "log D(G(z)) instead (the *non-saturating* loss), which gives it useful gradients early on, when D "
        "rejects everything:")
    st.latex(r"\mathcal{L}_D = -\log D(x) - \log\big(1 - D(G(z))\big)")
    st.latex(r"\mathcal{L}_G = -\log D(G(z))")
    st.markdown(
        "The chart on the Train page shows both losses and D's average verdicts: **D(x)** on real digits and "
        "**D(G(z))** on generated ones. Neither loss goes to zero in a healthy run; they hover while the "
        "samples improve. At the game's equilibrium D can no longer tell, and both verdicts sit at ½. When D "
        "wins outright (D(x) → 1, D(G(z)) → 0), G's gradient carries no direction and it stops learning; when "
        "a few digits fool D best, G may draw only those (**mode collapse**). The Train page's lessons show "
        "both, and how to cure them.")
    st.markdown(
        "One smooth space of *z* must hold all ten digits, so a plain GAN also draws the in-between shapes "
        "that join one digit to the next, and often favours some digits. A **self-conditioned** GAN (Liu et "
        "al., 2020) first sorts the training digits into groups by how their pixels look (k-means, no "
        "labels), then learns each group the way the conditional GAN learns each digit. The shipped dcgan "
        "and mlp_gan are: on the Explore page you can pick a group they found.")
with right:
    st.subheader("What a latent space is")
    st.markdown(
        "Every image the model can draw has an address: the vector *z* it was drawn from. Nearby addresses "
        "give similar images, so moving *z* a little changes the digit a little. That space of addresses is "
        "the **latent space**. Directions in it can mean something a person can see — thicker strokes, a "
        "slant — and a straight (or spherical) path between two addresses morphs one digit into another.")
    st.markdown(
        "A **variational autoencoder (VAE)** learns the same kind of space from the other side: an encoder "
        "maps each digit to an address, a decoder draws it back, and a KL term keeps addresses close to a "
        "standard normal so that random ones decode to digits. The fit is loose — random addresses often fall "
        "between the digits and decode to smudges — so when training ends, aigc fits a mixture of Gaussians "
        "per digit to where the encoder put the training digits and draws from those (you pick the digit, "
        "as with the conditional GAN), and sharpens the decoder's blurred edges until its digits have as "
        "many grey pixels as real ones. With a 2-D latent you can see the whole map.")

st.divider()
left, right = st.columns(2, gap="large")
with left:
    st.subheader("How diffusion learns")
    st.markdown(
        "The models behind today's image generators learn one small skill: take a little noise out of an image. "
        "In training, a real digit x₀ is mixed with random noise ε at a random level t, from t = 0 (the digit) to "
        "t = 1 (pure noise), and the network learns to say what was added (or, in **flow matching**, which way "
        "leads from the noise back to the digit):")
    st.latex(r"x_t = \alpha(t)\,x_0 + \sigma(t)\,\varepsilon \qquad \mathcal{L} = \big\| f_\theta(x_t, t, y) - \text{target} \big\|^2")
    st.markdown(
        "To draw, it starts from pure noise and takes that step again and again, 1 to 50 times; at each step "
        "it also guesses the finished digit, blurry at first and sharp at the end. The Explore page lets you "
        "scrub through those steps.")
with right:
    st.subheader("Guidance, and diffusion in a latent space")
    st.markdown(
        "The network is told which digit y to draw, and one time in ten in training it is told nothing. So it "
        "can predict both ways, and **classifier-free guidance** (Ho & Salimans, 2022) pushes each step further "
        "in the direction the label adds: w = 1 is the plain model, a larger w gives cleaner, more typical "
        "digits that look more alike, w = 0 forgets the label. More typical means less varied: guidance "
        "trades variety for typicality.")
    st.markdown(
        "**Latent diffusion**, Stable Diffusion's design (Rombach et al., 2022), runs the same process on a "
        "VAE's few numbers per digit instead of its 784 pixels, and lets the VAE's decoder draw the result. "
        "It trains in seconds; built on the 2-D VAE, you can watch its samples travel across the latent map.")

st.divider()
st.subheader("The models")

# The rest needs the backend, which a fresh server imports in the background for its first seconds
# (ui.startup): till then the grid's place says what is coming, and the frame reruns the page once it is in.
if not startup.backend_ready():
    picture.markdown(
        "<div style='aspect-ratio: 10 / 6; display: flex; align-items: center; justify-content: center; "
        "padding: 0 2rem; text-align: center; background: #0e1117; color: #d0d4dc; border-radius: 0.5rem'>"
        "Loading PyTorch to draw digits with a shipped model…</div>", unsafe_allow_html=True)
    st.caption("Loading the models…")
    st.stop()

from aigc import MODELS  # noqa: E402
from ui import cached, session, widgets  # noqa: E402

shipped = session.checkpoint_choices()
demo = cached.demo_grid()
if demo is not None:
    model_name, loaded, pixels = demo
    with picture:
        widgets.image(pixels, caption=f"Digits drawn by the shipped {model_name} after {loaded.checkpoint['step']:,} "
                                      f"steps" + (": each column is told which digit to draw, each row starts from "
                                                  "other noise." if loaded.model.conditional else "."))

for name, (_, cls) in MODELS.items():
    st.markdown(f"- **{name}** — {cls.summary}")

st.caption(f"Device in use: **{cached.device_label()}**")
if shipped:
    st.caption("Checkpoints ready to explore: " + ", ".join(shipped))
else:
    st.warning("No checkpoints found in checkpoints/ yet — train a model on the **Train** page and save it, "
               "then explore it.")
